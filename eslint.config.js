// ESLint flat config: type-aware rules from typescript-eslint, formatting left to Prettier
// (eslint-config-prettier turns off the rules that would fight it). Import cycles are not checked
// here but by hack/check-cycles.ts, also part of `npm run lint`: import-x/no-cycle skips every
// type-only import (by design, with no option to follow them), so cycles closed by an
// `import type` passed it, and it took about 30 % of the rules' time.
import { defineConfig } from "eslint/config";
import prettier from "eslint-config-prettier";
import tseslint from "typescript-eslint";

export default defineConfig(
  {
    ignores: ["node_modules/", "dist/", ".cache/", "coverage/", "charts/", "config/"],
  },
  {
    files: ["**/*.ts"],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/consistent-type-imports": [
        "error",
        { prefer: "type-imports", fixStyle: "separate-type-imports" },
      ],
      "@typescript-eslint/consistent-type-exports": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      "@typescript-eslint/only-throw-error": "error",
      "@typescript-eslint/switch-exhaustiveness-check": "error",
      "@typescript-eslint/require-await": "off",
      "no-restricted-syntax": [
        "error",
        {
          selector: "ExportAllDeclaration",
          message: "Export names explicitly from index.ts; `export *` hides a module's surface.",
        },
        {
          selector: "TSEnumDeclaration",
          message: "Use an `as const` object and a union type instead of an enum.",
        },
        {
          selector:
            "CallExpression[callee.property.name='transaction'][callee.object.name=/^(tx|q|savepoint)$/]",
          message:
            "Open a savepoint with withSavepoint(tx, fn): it keeps track of the role in force.",
        },
      ],
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              // Modules talk through each other's index.ts; reaching into another module's files
              // couples to its internals (a context's tables above all).
              regex:
                "^(\\.\\./)+(api|app|auth|cli|config|contexts/[a-z]+|db|dev|http|kernel|lifecycle|maintenance|messaging|meta|jetstream|observability|platform-config|simulator|workflow|workers|reconcile)/(?!index\\.js$).+",
              message: "Import another module through its index.ts.",
            },
          ],
        },
      ],
      "no-restricted-properties": [
        "error",
        {
          object: "process",
          property: "env",
          message:
            "Read process configuration through src/config (loadConfig) so every value is validated once.",
        },
      ],
    },
  },
  {
    // The places allowed to read the environment: the process-config loader, test and bench
    // harnesses (they locate the services hack/ started), and the CLI bootstrap.
    files: [
      "src/config/load.ts",
      "test/**/*.ts",
      "bench/**/*.ts",
      "chaos/**/*.ts",
      "**/*.int.test.ts",
      "hack/**/*.ts",
    ],
    rules: { "no-restricted-properties": "off" },
  },
  {
    // vitest's asymmetric matchers (expect.any, expect.stringContaining) are typed `any`.
    files: ["**/*.test.ts", "test/**/*.ts", "chaos/**/*.ts"],
    rules: { "@typescript-eslint/no-unsafe-assignment": "off" },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    extends: [tseslint.configs.disableTypeChecked],
  },
  prettier,
);
