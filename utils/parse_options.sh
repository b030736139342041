#!/usr/bin/env bash
# Command-line option parsing for recipe scripts, compatible with Kaldi's utils/parse_options.sh.
#
# Source it after giving every option variable a default; each "--name value" (or "--name=value")
# then sets the variable "name", with dashes in the option standing for underscores in the variable
# ("--stop-stage 3" and "--stop_stage 3" both set stop_stage). Parsing stops at the first argument
# that does not start with "--", or after a lone "--"; the remaining arguments stay in "$@".
#
#   stage=0
#   use_gpu=false
#   help_message="Usage: $0 [options] <data-dir>"
#   . utils/parse_options.sh
#
# Rules:
#   --help, -h       prints $help_message and exits 0
#   --config FILE    sources FILE (shell assignments), so its values become the new defaults; options
#                    given after it still win
#   booleans         an option whose default is "true" or "false" only takes true or false
#   unknown option   error naming it; no value for an option -> error naming it
# On an error it prints the reason to stderr and exits the sourcing script with status 1.

_po_prog=${0##*/}

_po_print_help() {
  if [ -n "${help_message:-}" ]; then
    printf '%s\n' "$help_message"
  else
    echo "Usage: $_po_prog [options]"
  fi
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      _po_print_help
      exit 0 ;;
    --)
      shift
      break ;;
    --*=*)
      _po_name=${1%%=*}; _po_value=${1#*=}; shift ;;
    --*)
      _po_name=$1
      if [ $# -lt 2 ]; then
        echo "$_po_prog: option $_po_name needs a value" >&2
        exit 1
      fi
      _po_value=$2; shift 2 ;;
    *)
      break ;;
  esac
  _po_var=${_po_name#--}
  _po_var=${_po_var//-/_}
  if ! [[ $_po_var =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    echo "$_po_prog: invalid option $_po_name" >&2
    exit 1
  fi
  if [ "$_po_var" = config ]; then
    if [ ! -r "$_po_value" ]; then
      echo "$_po_prog: --config: cannot read '$_po_value'" >&2
      exit 1
    fi
    # shellcheck disable=SC1090
    . "$_po_value" || { echo "$_po_prog: error in config file '$_po_value'" >&2; exit 1; }
    continue
  fi
  if [ -z "${!_po_var+set}" ]; then
    echo "$_po_prog: unknown option $_po_name (see $_po_prog --help)" >&2
    exit 1
  fi
  case "${!_po_var}" in
    true|false)
      if [ "$_po_value" != true ] && [ "$_po_value" != false ]; then
        echo "$_po_prog: option $_po_name takes true or false, not '$_po_value'" >&2
        exit 1
      fi ;;
  esac
  printf -v "$_po_var" '%s' "$_po_value"
done
unset _po_name _po_value _po_var _po_prog
unset -f _po_print_help
