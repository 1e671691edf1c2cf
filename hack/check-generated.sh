#!/usr/bin/env bash
# Fails when a generated file is out of date with its source, so a change to a source cannot land
# without its regenerated output. Run by `npm test`.
#
#   migrations   src/contexts/*/schema.ts  ->  src/db/migrations (drizzle-kit)
#   npm run generate   src/api, …              ->  docs/api/openapi.json, … (hack/generate.ts)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

work="$CACHE/generated-check"
rm -rf "$work" && mkdir -p "$work"
cp -r src/db/migrations "$work/migrations"
npx --no-install drizzle-kit generate --dialect postgresql --schema './src/contexts/*/schema.ts' --schema './src/simulator/schema.ts' \
  --out "$work/migrations" --casing snake_case >"$work/drizzle.log" 2>&1 \
  || { cat "$work/drizzle.log" >&2; die "drizzle-kit generate failed"; }
if ! diff -r src/db/migrations "$work/migrations" >"$work/diff" 2>&1; then
  cat "$work/diff" >&2
  die "a schema.ts changed without a migration: run 'npx drizzle-kit generate --name <what-changed>' and commit src/db/migrations"
fi
mkdir -p "$work/tree"
npx --no-install tsx hack/generate.ts "$work/tree" >"$work/generate.log" 2>&1 \
  || { cat "$work/generate.log" >&2; die "npm run generate failed"; }
stale=()
while IFS= read -r -d '' file; do
  rel=${file#"$work/tree/"}
  cmp -s "$file" "$rel" || stale+=("$rel")
done < <(find "$work/tree" -type f -print0)
if [ ${#stale[@]} -gt 0 ]; then
  for f in "${stale[@]}"; do diff -u "$f" "$work/tree/$f" | head -20 >&2 || true; done
  die "out of date: ${stale[*]}; run 'npm run generate' and commit the result"
fi
say "generated files are up to date"
