#!/usr/bin/env bash
# Quick checks before a commit: format, lint, types, generated files. (The full gate is npm test.)
set -euo pipefail
cd "$(dirname "$0")/.."
npx --no-install prettier --write . >/dev/null
npx --no-install eslint --max-warnings=0 .
npx --no-install tsc -p tsconfig.json --noEmit
bash hack/check-generated.sh
