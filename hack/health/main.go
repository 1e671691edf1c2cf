// Command gitops-health prints, for each Kubernetes object it reads as JSON, the health that Flux
// and Argo CD compute for it with their own libraries:
//
//   - kstatus: sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute, which Flux's `wait` and
//     `healthChecks` use for kinds it has no rules of its own for;
//   - argocd: a health script from an argocd-cm ConfigMap (or one Lua file), run in gopher-lua
//     inside Argo CD v3.6's health flow (argo.go): how Argo CD opens the Lua state and hands it
//     the object, how it reads the returned table, and how it then treats objects being deleted.
//
// Input is what `kubectl get -o json` prints: one object, or a List of them. Numbers are decoded
// as the Kubernetes client decodes them (int64 where they are whole), as in Argo CD's cache.
//
//	kubectl get networkpools -o json | gitops-health --argocd-cm docs/gitops/argocd/argocd-cm-patch.yaml
//	gitops-health --lua docs/gitops/argocd/health.lua -o json < object.json
//	gitops-health --version
//
// It is a test and development tool of this repository (hack/health.sh builds it), not a product.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// stamp identifies the sources this binary was built from; hack/health.sh sets it with -X and
// rebuilds when it differs from the hash of hack/health/.
var stamp = "dev"

// Verdict is one tool's answer for one object.
type Verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// Row is what gitops-health prints for one object.
type Row struct {
	Kind    string  `json:"kind"`
	Name    string  `json:"name"`
	KStatus Verdict `json:"kstatus"`
	ArgoCD  Verdict `json:"argocd"`
}

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gitops-health: error:", err)
		os.Exit(1)
	}
}

func run(args []string, in io.Reader, out io.Writer) error {
	flags := flag.NewFlagSet("gitops-health", flag.ContinueOnError)
	cmPath := flags.String("argocd-cm", "", "an argocd-cm ConfigMap (YAML or JSON) whose resource.customizations.health.<group>_<kind> keys hold the health scripts")
	luaPath := flags.String("lua", "", "one health script for every object (instead of --argocd-cm)")
	output := flags.String("o", "table", "output format: table or json")
	version := flags.Bool("version", false, "print the build stamp and the versions of kstatus and gopher-lua, then exit")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(out, versionLine())
		return nil
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: the objects are read from standard input", flags.Arg(0))
	}
	if *output != "table" && *output != "json" {
		return fmt.Errorf("-o %q: allowed are table and json", *output)
	}
	var overrides Overrides
	switch {
	case *cmPath != "" && *luaPath != "":
		return fmt.Errorf("--argocd-cm and --lua: give one of them, not both")
	case *cmPath != "":
		var err error
		if overrides, err = readArgoCDConfigMap(*cmPath); err != nil {
			return err
		}
	case *luaPath != "":
		script, err := os.ReadFile(*luaPath)
		if err != nil {
			return fmt.Errorf("--lua: %w", err)
		}
		overrides = Overrides{"*": {HealthLua: string(script)}}
	default:
		return fmt.Errorf("give --argocd-cm FILE or --lua FILE: the Argo CD health script to run")
	}

	objects, err := readObjects(in)
	if err != nil {
		return err
	}
	rows := make([]Row, 0, len(objects))
	for _, obj := range objects {
		row := Row{Kind: obj.GetKind(), Name: obj.GetName()}
		res, err := status.Compute(obj)
		if err != nil {
			row.KStatus = Verdict{Status: "Error", Message: err.Error()}
		} else {
			row.KStatus = Verdict{Status: string(res.Status), Message: res.Message}
		}
		// GetResourceHealth returns an error only next to an Unknown verdict that says it.
		health, _ := GetResourceHealth(obj, overrides)
		if health == nil {
			row.ArgoCD = Verdict{Status: "", Message: "no health check for this kind"}
		} else {
			row.ArgoCD = Verdict{Status: string(health.Status), Message: health.Message}
		}
		rows = append(rows, row)
	}

	if *output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECT\tKSTATUS\tKSTATUS MESSAGE\tARGO CD\tARGO CD MESSAGE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\n", r.Kind, r.Name, r.KStatus.Status, r.KStatus.Message, r.ArgoCD.Status, r.ArgoCD.Message)
	}
	return tw.Flush()
}

// readObjects decodes one object or a List from JSON the way client-go's unstructured decoder
// does (k8s.io/apimachinery/pkg/util/json: whole numbers become int64).
func readObjects(in io.Reader) ([]*unstructured.Unstructured, error) {
	data, err := io.ReadAll(in)
	if err != nil {
		return nil, fmt.Errorf("reading standard input: %w", err)
	}
	var doc map[string]any
	if err := utiljson.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("standard input is not a JSON object (kubectl get -o json): %w", err)
	}
	if items, ok := doc["items"].([]any); ok && strings.HasSuffix(fmt.Sprint(doc["kind"]), "List") {
		objects := make([]*unstructured.Unstructured, 0, len(items))
		for i, item := range items {
			m, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("items[%d]: not an object", i)
			}
			objects = append(objects, &unstructured.Unstructured{Object: m})
		}
		return objects, nil
	}
	if _, ok := doc["kind"].(string); !ok {
		return nil, fmt.Errorf("standard input: no kind: expected a Kubernetes object or a List")
	}
	return []*unstructured.Unstructured{{Object: doc}}, nil
}

func versionLine() string {
	versions := map[string]string{}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			versions[dep.Path] = dep.Version
		}
	}
	return fmt.Sprintf("gitops-health %s sigs.k8s.io/cli-utils@%s github.com/yuin/gopher-lua@%s (argo-cd v3.6 health flow)",
		stamp, versions["sigs.k8s.io/cli-utils"], versions["github.com/yuin/gopher-lua"])
}
