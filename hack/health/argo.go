package main

// Argo CD v3.6's health flow for a custom resource with a Lua health check, reproduced line by
// line from the v3.6.1 sources, since that module cannot be imported here (it needs Go 1.27 and
// brings most of Argo CD with it):
//
//   - github.com/argoproj/argo-cd/v3@v3.6.1 util/settings/settings.go
//     appendResourceOverridesFromSplitKeys, convertToOverrideKey: the argocd-cm keys;
//   - util/lua/lua.go: ResourceHealthOverrides.GetResourceHealth, VM.runLuaWithResourceActionParameters,
//     VM.ExecuteHealthLua, isValidHealthStatusCode, decodeValue;
//   - util/lua/oslib_safe.go: OpenSafeOs, SafeOsLoader (only os.time and os.date);
//   - github.com/argoproj/argo-cd/gitops-engine/v3@v3.6.1 pkg/health/health.go:
//     GetResourceHealth and pendingDeletionHealth, which run after the script.
//
// Left out, as they never apply to our kinds: wildcard keys and Argo CD's built-in scripts (we
// look keys up exactly), the built-in Go health checks (none for our group), and the compiled
// script cache (it changes nothing but speed).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/yaml"
)

// HealthStatusCode and the codes: gitops-engine pkg/health/health.go.
type HealthStatusCode string

const (
	HealthStatusUnknown     HealthStatusCode = "Unknown"
	HealthStatusProgressing HealthStatusCode = "Progressing"
	HealthStatusHealthy     HealthStatusCode = "Healthy"
	HealthStatusSuspended   HealthStatusCode = "Suspended"
	HealthStatusDegraded    HealthStatusCode = "Degraded"
	HealthStatusMissing     HealthStatusCode = "Missing"
)

// HealthStatus: gitops-engine pkg/health/health.go. DeletionMessage is read from the script's
// table and never shown as such.
type HealthStatus struct {
	Status          HealthStatusCode `json:"status,omitempty"`
	Message         string           `json:"message,omitempty"`
	DeletionMessage string           `json:"deletionMessage,omitempty"`
}

// hookFinalizer: gitops-engine pkg/sync/hook/hook.go HookFinalizer.
const hookFinalizer = "argocd.argoproj.io/hook-finalizer"

// ResourceOverride holds what argocd-cm says about one group/kind (the health part of
// appv1.ResourceOverride).
type ResourceOverride struct {
	HealthLua   string
	UseOpenLibs bool
}

// Overrides maps "<group>/<kind>" (or "<kind>" for the core group) to its override; the key "*"
// is this tool's own: the script of --lua, for every object.
type Overrides map[string]ResourceOverride

// readArgoCDConfigMap reads the health keys of an argocd-cm ConfigMap as Argo CD's settings
// manager does (appendResourceOverridesFromSplitKeys): resource.customizations.<type>.<group_kind>.
func readArgoCDConfigMap(path string) (Overrides, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--argocd-cm: %w", err)
	}
	var cm struct {
		Kind string            `json:"kind"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		return nil, fmt.Errorf("--argocd-cm %s: %w", path, err)
	}
	if cm.Kind != "ConfigMap" {
		return nil, fmt.Errorf("--argocd-cm %s: kind is %q, expected ConfigMap", path, cm.Kind)
	}
	overrides := Overrides{}
	for k, v := range cm.Data {
		if !strings.HasPrefix(k, "resource.customizations") {
			continue
		}
		parts := strings.SplitN(k, ".", 4)
		if len(parts) < 4 {
			continue
		}
		key, err := convertToOverrideKey(parts[3])
		if err != nil {
			return nil, fmt.Errorf("--argocd-cm %s: %w", path, err)
		}
		o := overrides[key]
		switch parts[2] {
		case "health":
			o.HealthLua = v
		case "useOpenLibs":
			if o.UseOpenLibs, err = strconv.ParseBool(v); err != nil {
				return nil, fmt.Errorf("--argocd-cm %s: %s: %w", path, k, err)
			}
		default:
			continue // actions, ignoreDifferences, …: not about health
		}
		overrides[key] = o
	}
	return overrides, nil
}

// convertToOverrideKey: util/settings/settings.go.
func convertToOverrideKey(groupKind string) (string, error) {
	parts := strings.Split(groupKind, "_")
	if len(parts) == 2 {
		return fmt.Sprintf("%s/%s", parts[0], parts[1]), nil
	} else if len(parts) == 1 && groupKind != "" {
		return groupKind, nil
	}
	return "", fmt.Errorf("group kind should be in format `resource.customizations.<type>.<group_kind>` or resource.customizations.<type>.<kind>`, got group kind: '%s'", groupKind)
}

// GetResourceHealth: gitops-engine pkg/health/health.go GetResourceHealth with
// ResourceHealthOverrides (util/lua/lua.go) as the override; no built-in check exists for our kinds.
func GetResourceHealth(obj *unstructured.Unstructured, overrides Overrides) (*HealthStatus, error) {
	health, err := overrides.getResourceHealth(obj)
	if err != nil {
		health = &HealthStatus{Status: HealthStatusUnknown, Message: err.Error()}
		return health, fmt.Errorf("failed to get resource health for %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	if health != nil {
		if deletionHealth := pendingDeletionHealth(obj, health); deletionHealth != nil {
			return deletionHealth, nil
		}
		return health, nil
	}
	// No health check matched. Argo CD keeps its "Pending deletion" for terminating resources.
	if deletionHealth := pendingDeletionHealth(obj, nil); deletionHealth != nil {
		return deletionHealth, nil
	}
	return nil, nil
}

// pendingDeletionHealth: gitops-engine pkg/health/health.go. For an object being deleted the
// script's verdict stands only when it set deletionMessage, and then with that message.
func pendingDeletionHealth(obj *unstructured.Unstructured, health *HealthStatus) *HealthStatus {
	if obj.GetDeletionTimestamp() == nil || slices.Contains(obj.GetFinalizers(), hookFinalizer) {
		return nil
	}
	if health != nil && health.DeletionMessage != "" {
		return &HealthStatus{Status: health.Status, Message: health.DeletionMessage}
	}
	msg := "Pending deletion"
	if finalizers := obj.GetFinalizers(); len(finalizers) > 0 {
		msg = "Pending deletion; blocked by finalizers: " + strings.Join(finalizers, ", ")
	}
	return &HealthStatus{Status: HealthStatusProgressing, Message: msg}
}

// getResourceHealth: util/lua/lua.go ResourceHealthOverrides.GetResourceHealth and
// VM.GetHealthScript (exact key only).
func (overrides Overrides) getResourceHealth(obj *unstructured.Unstructured) (*HealthStatus, error) {
	gvk := obj.GroupVersionKind()
	key := gvk.Kind
	if gvk.Group != "" {
		key = fmt.Sprintf("%s/%s", gvk.Group, gvk.Kind)
	}
	o, ok := overrides[key]
	if !ok || o.HealthLua == "" {
		o, ok = overrides["*"]
	}
	if !ok || o.HealthLua == "" {
		return nil, nil
	}
	return executeHealthLua(obj, o.HealthLua, o.UseOpenLibs)
}

// runLua: util/lua/lua.go VM.runLuaWithResourceActionParameters, without action parameters.
func runLua(obj *unstructured.Unstructured, script string, useOpenLibs bool) (*lua.LState, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !useOpenLibs})
	for _, pair := range []struct {
		n string
		f lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(pair.f), NRet: 0, Protect: true}, lua.LString(pair.n)); err != nil {
			panic(err)
		}
	}
	l.PreloadModule(lua.OsLibName, safeOsLoader)

	ctx, cancel := context.WithTimeout(context.Background(), 1*time.Second)
	defer cancel()
	l.SetContext(ctx)

	l.SetGlobal("actionParams", l.CreateTable(0, 0))
	l.SetGlobal("obj", decodeValue(l, obj.Object))

	fn, err := l.LoadString(script)
	if err == nil {
		l.Push(fn)
		err = l.PCall(0, lua.MultRet, nil)
	}
	var apiErr *lua.ApiError
	if errors.As(err, &apiErr) && apiErr.Type == lua.ApiErrorRun {
		apiErr.StackTrace = ""
		err = apiErr
	}
	return l, err
}

// executeHealthLua: util/lua/lua.go VM.ExecuteHealthLua.
func executeHealthLua(obj *unstructured.Unstructured, script string, useOpenLibs bool) (*HealthStatus, error) {
	l, err := runLua(obj, script, useOpenLibs)
	defer l.Close()
	if err != nil {
		return nil, err
	}
	returnValue := l.Get(-1)
	if returnValue.Type() == lua.LTTable {
		jsonBytes, err := luajson.Encode(returnValue)
		if err != nil {
			return nil, err
		}
		healthStatus := &HealthStatus{}
		if err := json.Unmarshal(jsonBytes, healthStatus); err != nil {
			// An empty table encodes as [].
			var typeError *json.UnmarshalTypeError
			if errors.As(err, &typeError) {
				return &HealthStatus{}, nil
			}
			return nil, err
		}
		switch healthStatus.Status {
		case HealthStatusUnknown, HealthStatusProgressing, HealthStatusSuspended, HealthStatusHealthy, HealthStatusDegraded, HealthStatusMissing:
			return healthStatus, nil
		}
		return &HealthStatus{Status: HealthStatusUnknown, Message: "Lua returned an invalid health status"}, nil
	} else if returnValue.Type() == lua.LTNil {
		return nil, nil
	}
	return nil, fmt.Errorf("expect %s output from Lua script, not %s", "table", returnValue.Type().String())
}

// decodeValue: util/lua/lua.go.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch converted := value.(type) {
	case bool:
		return lua.LBool(converted)
	case float64:
		return lua.LNumber(converted)
	case string:
		return lua.LString(converted)
	case json.Number:
		return lua.LString(converted)
	case int:
		return lua.LNumber(converted)
	case int32:
		return lua.LNumber(converted)
	case int64:
		return lua.LNumber(converted)
	case []any:
		arr := l.CreateTable(len(converted), 0)
		for _, item := range converted {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(converted))
		for key, item := range converted {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	case nil:
		return lua.LNil
	}
	return lua.LNil
}

// openSafeOs and safeOsLoader: util/lua/oslib_safe.go. OpenSafeOs registers its functions under
// the name of the table library, as Argo CD does: a script has no global os, but
// `local os = require("os")` gives it os.time and os.date. health.lua needs neither.
func openSafeOs(l *lua.LState) int {
	l.Push(l.RegisterModule(lua.TabLibName, osFuncs))
	return 1
}

func safeOsLoader(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), osFuncs))
	return 1
}

// osFuncs: os.time and os.date, as far as a health script of ours could use them (Argo CD's own
// strftime is not reproduced: os.date returns Go's RFC 3339 form of the time).
var osFuncs = map[string]lua.LGFunction{
	"time": func(l *lua.LState) int { l.Push(lua.LNumber(time.Now().Unix())); return 1 },
	"date": func(l *lua.LState) int { l.Push(lua.LString(time.Now().Format(time.RFC3339))); return 1 },
}
