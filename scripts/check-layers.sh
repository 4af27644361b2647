#!/usr/bin/env bash
# Checks gyre's layers: every #include "..." in src/ must go down the layer
# order (or stay in its folder), library code must not print (it logs through
# gyre_logf's hook), and no source file may pass 1,000 lines unless
# docs/architecture.md names it, with why, under "Files over 1,000 lines".  Prints each problem as file:line and the rule it breaks, and exits
# 1 when there is any; `make test` runs it before the suites.
#
#   scripts/check-layers.sh [ROOT]   ROOT holds src/ and docs/architecture.md
#                                    (default: this repository); the tests run
#                                    it on the trees under tests/layers/.
#
# The table below is the authority for what each folder may include;
# docs/architecture.md shows it for readers and says so.  A folder of src/
# without a row here is itself an error, so a new folder gets its place in the
# order when it is made.
set -uo pipefail

root=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
if [ ! -d "$root/src" ] || [ ! -f "$root/docs/architecture.md" ]; then
  echo "check-layers: $root has no src/ or no docs/architecture.md" >&2
  exit 2
fi
cd "$root" || exit 2

# The layer order, top to bottom (docs/architecture.md, "Layers"):
#   cli/ main.c > server/ > proxy/ > loop/ > control/ > route/ dialect/ otlp/ metrics/ > trace/ store/ > config/ > common/
# and, per folder, the folders it may include besides itself.  Folders on one
# level include each other only where a row says so (trace/ and store/: the
# writer writes to the store's table, the store reads the trace record).
declare -A MAY=(
  [common]=""
  [config]="common"
  [trace]="common config store"
  [store]="common config trace"
  [route]="common config"
  [dialect]="common config"
  [otlp]="common config trace"
  [metrics]="common config trace"
  [control]="common config trace store route dialect otlp metrics"
  [loop]="common config trace store route dialect otlp metrics control"
  [proxy]="common config trace store route dialect otlp metrics control loop"
  [server]="common config trace store route dialect otlp metrics control loop proxy"
  [cli]="common config trace store route dialect otlp metrics control loop proxy server"
  [main.c]="common config trace store route dialect otlp metrics control loop proxy server cli"
)

# Upward includes still in the code, as docs/architecture.md lists them under
# "### Exceptions" ("- src/FILE includes FOLDER/HEADER: why").  Each is
# reported, not failed; one that is no longer in the code fails, so the list
# never outlives them.
EXCEPTIONS=()
while IFS= read -r e; do
  [ -n "$e" ] && EXCEPTIONS+=("$e")
done < <(awk '/^### Exceptions/ {on = 1; next} /^##/ {on = 0}
              on && /^- `?src\/[^ `]+`? includes `?[^ `:]+/ {gsub(/`/, ""); sub(/:.*/, ""); print $2, $4}' docs/architecture.md)

problems=0
problem() {
  echo "$1"
  problems=$((problems + 1))
}

# The folder a path under src/ belongs to: its first component, or the file's
# own name for a file directly in src/ (main.c).
folder_of() {
  local rel=${1#src/}
  case $rel in
  */*) echo "${rel%%/*}" ;;
  *) echo "$rel" ;;
  esac
}

allowed() { # allowed FROM TO
  local f
  [ "$1" = "$2" ] && return 0
  for f in ${MAY[$1]}; do
    [ "$f" = "$2" ] && return 0
  done
  return 1
}

is_exception() { # is_exception FILE INCLUDE
  local e
  for e in "${EXCEPTIONS[@]}"; do
    [ "$e" = "$1 $2" ] && return 0
  done
  return 1
}

declare -A seen_exception=()
nincludes=0
files=$(find src -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)
nfiles=$(echo "$files" | grep -c .)

for file in $files; do
  from=$(folder_of "$file")
  if [ -z "${MAY[$from]+set}" ]; then
    problem "$file:1: src/$from has no row in the layer table of scripts/check-layers.sh (give it its place in docs/architecture.md's order)"
    continue
  fi
  while IFS= read -r hit; do
    [ -n "$hit" ] || continue
    line=${hit%%:*}
    inc=$(printf '%s\n' "${hit#*:}" | sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1/')
    nincludes=$((nincludes + 1))
    case $inc in
    ../*) to=$(folder_of "src/${inc#../}") ;; # relative to src/<folder>/
    */*) to=$(folder_of "src/$inc") ;;
    *) to=$from ;; # a header beside the file
    esac
    if allowed "$from" "$to"; then
      continue
    fi
    if is_exception "$file" "$inc"; then
      seen_exception["$file $inc"]=1
      echo "$file:$line: includes $inc: an exception docs/architecture.md lists"
      continue
    fi
    may=$(for f in ${MAY[$from]}; do printf '%s/, ' "$f"; done)
    problem "$file:$line: includes $inc, which goes up or across the layers: $from/ may include ${may}itself and nothing else (scripts/check-layers.sh)"
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" || true)
done

for e in "${EXCEPTIONS[@]}"; do
  if [ -z "${seen_exception[$e]+set}" ]; then
    problem "docs/architecture.md: the exception '${e/ / includes }' is no longer in the code: remove it from \"### Exceptions\""
  fi
done

# Library code never prints: it logs through gyre_logf (src/common/log.h),
# whose hook the binary sets.  Only the command line (src/cli/, src/main.c)
# and the logger itself (src/common/log.c) write to stdout or stderr.
for file in $files; do
  case $file in
  src/cli/* | src/main.c | src/common/log.c) continue ;;
  esac
  # Comments are blanked first (a comment may say "stderr"), keeping line numbers.
  while IFS= read -r hit; do
    [ -n "$hit" ] || continue
    problem "${file}:${hit%%:*}: library code prints (${hit#*:}); log through gyre_logf (src/common/log.h) instead"
  done < <(sed -E -e 's://.*$::' -e 's:/\*.*\*/::g' "$file" |
    awk '{ line = $0
           if (incomment) { if (sub(/^.*\*\//, "", line)) incomment = 0; else line = "" }
           if (match(line, /\/\*/)) { line = substr(line, 1, RSTART - 1); incomment = 1 }
           gsub(/format[ \t]*\([ \t]*printf/, "", line) # __attribute__((format(printf, ...))) names a style, not a call
           gsub(/"([^"\\]|\\.)*"/, "\"\"", line) # a string literal ("stderr" as a config value) is not a call
           if (match(line, /(^|[^A-Za-z0-9_])((v?fprintf|printf|puts|fputs|fputc|putchar|perror)[ \t]*\(|(stderr|stdout)([^A-Za-z0-9_]|$))/)) {
             w = substr(line, RSTART, RLENGTH); gsub(/[^A-Za-z0-9_]/, "", w); print NR ":" w } }')
done

# Files over 1,000 lines must be named in docs/architecture.md's section of
# that name, which says why each is one thing.
named=$(awk '/^## Files over 1,000 lines/ {on = 1; next} /^## / {on = 0} on' docs/architecture.md)
for file in $files; do
  n=$(wc -l < "$file")
  if [ "$n" -gt 1000 ] && ! grep -qF "$file" <<< "$named"; then
    problem "$file:$n: $n lines, over 1,000, and docs/architecture.md's \"Files over 1,000 lines\" does not name it with why it is one thing"
  fi
done

if [ "$problems" -ne 0 ]; then
  echo "check-layers: $problems problem(s) in $nfiles files"
  exit 1
fi
echo "check-layers: ok ($nincludes includes in $nfiles files, ${#seen_exception[@]} known exception(s))"
