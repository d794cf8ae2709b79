#!/bin/bash
# lint.sh - the static checks of `make lint`:
#   banned functions: calls to the libc functions common/banned.h forbids
#   ShellCheck: every shell script of the project
#   cppcheck: common/ and drivers/
#   format: clang-format --dry-run against .clang-format
# Each check runs even when an earlier one failed; exit 1 when any failed.
#
# The format check only reports for now (LINT_FORMAT=strict makes it fail):
# clang-format 14 (Debian 12) cannot reproduce the code as it is written
# (comments aligned across a struct, macro backslashes at column 89, line
# breaks chosen by hand below 100 columns, adjacent string literals on one
# line), and others' files are not reformatted behind their back.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
"tests/deps.sh" || exit 1

failed=()

section() {
    echo "== $1"
}

# The project's files: tracked plus new ones not ignored (others' work in
# progress is linted too, so it is clean before it is committed); outside a
# git checkout, everything but the build trees.
project_files() {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -co --exclude-standard -- "$@" | while IFS= read -r f; do
            [ -f "$f" ] && echo "$f"
        done
    else
        local -a names=()
        local p
        for p in "$@"; do
            names+=(-o -path "./$p")
        done
        find . \( -path ./.git -o -path './build*' \) -prune -o -type f \( "${names[@]:1}" \) -print |
            sed 's|^\./||'
    fi | LC_ALL=C sort -u
}

# ---------------------------------------------------------------- banned

# The names banned.h redefines, plus the brief's list in case banned.h ever
# loses one.
banned_names() {
    {
        sed -n 's/^#define \([a-z_][a-z0-9_]*\)(.*BANNED(.*/\1/p' common/banned.h
        printf '%s\n' strcpy strcat strncpy sprintf vsprintf gets strtok atoi atol system popen
    } | LC_ALL=C sort -u
}

# Prints FILE with comments and the insides of string and character
# literals blanked, line numbers kept, so that a word in a comment or a
# message is not taken for a call.
strip_c() {
    awk '
    BEGIN { inc = 0 }
    {
        out = ""; n = length($0); i = 1; q = ""
        while (i <= n) {
            c = substr($0, i, 1); c2 = substr($0, i, 2)
            if (inc) {
                if (c2 == "*/") { inc = 0; i += 2; out = out "  " } else { out = out " "; i++ }
            } else if (q != "") {
                if (c == "\\") { out = out "  "; i += 2 }
                else if (c == q) { out = out c; q = ""; i++ }
                else { out = out " "; i++ }
            } else if (c2 == "/*") { inc = 1; out = out "  "; i += 2 }
            else if (c2 == "//") { break }
            else if (c == "\"" || c == "\047") { q = c; out = out c; i++ }
            else { out = out c; i++ }
        }
        print out
    }' "$1"
}

check_banned() {
    local re f line hits=0
    re="(^|[^A-Za-z0-9_])($(banned_names | paste -sd '|'))[[:space:]]*\\("
    section "banned functions ($(banned_names | paste -sd ' '))"
    while IFS= read -r f; do
        [ "$f" != common/banned.h ] || continue
        while IFS= read -r line; do
            echo "$f:$line: $(sed -n "${line}p" "$f" | sed 's/^[[:space:]]*//')"
            hits=$((hits + 1))
        done < <(strip_c "$f" | grep -nE -- "$re" | cut -d: -f1)
    done < <(project_files '*.c' '*.h')
    if [ "$hits" -gt 0 ]; then
        echo "banned: $hits call(s) to banned functions (see common/banned.h for the replacements)"
        failed+=(banned)
    else
        echo "banned: none"
    fi
}

# ---------------------------------------------------------------- shellcheck

shell_scripts() {
    project_files install.sh .ci/run 'tests/*.sh' 'bench/*.sh' 'demo/*.sh'
}

check_shellcheck() {
    local -a scripts
    mapfile -t scripts < <(shell_scripts)
    section "shellcheck (${#scripts[@]} scripts)"
    if [ ${#scripts[@]} -eq 0 ]; then
        echo "shellcheck: no script found"
        failed+=(shellcheck)
        return
    fi
    # -x with SCRIPTDIR: follow `. "$(dirname "$0")/lib.sh"` and the like.
    if shellcheck -x -P SCRIPTDIR -- "${scripts[@]}"; then
        echo "shellcheck: ${#scripts[@]} scripts clean"
    else
        failed+=(shellcheck)
    fi
}

# ---------------------------------------------------------------- cppcheck

# Suppressed, with the reason:
#   missingIncludeSystem  system headers are the compiler's business
#   varFuncNullUB         NULL ends the strvec_pushl() lists; glibc's NULL is
#                         ((void *)0), which is exactly what the sentinel needs
#   variableScope         the house style declares at the top of a block
#   unreadVariable        cppcheck 2.10 does not know __attribute__((cleanup)):
#                         `_cleanup_close_ int fd = -1` is read at scope exit
#                         (gcc's -Wunused-but-set-variable still checks)
check_cppcheck() {
    section "cppcheck (common/ drivers/)"
    if cppcheck --quiet --error-exitcode=1 --std=c11 --language=c \
        --enable=warning,style,performance,portability --inline-suppr \
        -D_GNU_SOURCE -Icommon -j "$(nproc)" \
        --suppress=missingIncludeSystem --suppress=varFuncNullUB \
        --suppress=variableScope --suppress=unreadVariable \
        common drivers; then
        echo "cppcheck: clean"
    else
        failed+=(cppcheck)
    fi
}

# ---------------------------------------------------------------- format

check_format() {
    local -a files bad=()
    local f n
    mapfile -t files < <(project_files '*.c' '*.h')
    section "clang-format (${#files[@]} files, $(clang-format --version | sed 's/.*version \([0-9.]*\).*/\1/'))"
    for f in "${files[@]}"; do
        n=$(clang-format --dry-run "$f" 2>&1 | grep -c ': warning:')
        [ "$n" = 0 ] || bad+=("$f ($n)")
    done
    if [ ${#bad[@]} -eq 0 ]; then
        echo "format: all ${#files[@]} files match .clang-format"
        return
    fi
    echo "format: ${#bad[@]} of ${#files[@]} files differ from .clang-format (places):"
    printf '  %s\n' "${bad[@]}"
    echo "  (see one with: clang-format FILE | diff -u FILE -)"
    if [ "${LINT_FORMAT:-}" = strict ]; then
        failed+=(format)
    else
        echo "format: report only (LINT_FORMAT=strict to enforce); see the top of tests/lint.sh"
    fi
}

# A global symbol of ours with the name of one a linked library exports
# takes that library's place at run time (ELF interposition): xml_parse once
# replaced libxmlrpc's own and crashed every XML-RPC answer. Build the
# library and compare its symbols with the libraries the programs load.
check_symbols() {
    local ours libs clash
    section "symbol clashes with linked libraries"
    make -s build/bin/qcow2c-tm >/dev/null || { failed+=(symbols); return; }
    ours=$(nm --defined-only build/libqcow2c.a | awk '$2 ~ /^[TDBR]$/ {print $3}' | sort -u)
    libs=$(ldd build/bin/qcow2c-tm | awk '$3 ~ /^\// {print $3}' |
        xargs -r nm -D --defined-only 2>/dev/null | awk '{print $3}' | sort -u)
    clash=$(comm -12 <(printf '%s\n' "$ours") <(printf '%s\n' "$libs"))
    if [ -n "$clash" ]; then
        echo "symbols also exported by a linked library (rename ours):"
        printf '%s\n' "$clash" | sed 's/^/  /'
        failed+=(symbols)
    else
        echo "symbols: no clash"
    fi
}

check_banned
check_shellcheck
check_cppcheck
check_symbols
check_format

echo
if [ ${#failed[@]} -gt 0 ]; then
    echo "lint: FAILED: ${failed[*]}"
    exit 1
fi
echo "lint: all checks passed"
