#!/usr/bin/env bash
# Creates a new recipe directory that reuses the shared stages:  egs/TEMPLATE/setup.sh egs/<name>
# It links the stage script and utils/, copies path.sh, cmd.sh, db.sh and the backend confs (which a
# recipe may edit), and writes run.sh and local/ templates. Then write local/corpus.sh and
# local/data.sh for your corpus (see egs/slakh and egs/mini_slakh) and put your YAML configs in conf/.
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
  echo "Usage: $0 egs/<new-recipe>" >&2
  [ $# -eq 1 ] && exit 0 || exit 1
fi
template=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
target=$1
if [ -e "${target}" ]; then
  echo "$0: ${target} already exists; choose a new directory" >&2
  exit 1
fi
mkdir -p "${target}"
target=$(cd "${target}" && pwd)
if [ "$(cd "${target}/../.." && pwd)" != "$(cd "${template}/../.." && pwd)" ]; then
  rmdir "${target}"
  echo "$0: a recipe must sit next to TEMPLATE (egs/<name>): path.sh finds the repository two levels up" >&2
  exit 1
fi

cd "${target}"
ln -s ../TEMPLATE/inmsrl.sh inmsrl.sh
ln -s ../../utils utils
ln -s ../TEMPLATE/scripts scripts
cp "${template}/path.sh" "${template}/cmd.sh" "${template}/db.sh" .
mkdir -p conf local
cp "${template}/conf/slurm.conf" "${template}/conf/queue.conf" conf/
cp "${template}/local/corpus.sh" "${template}/local/data.sh" local/
cat > run.sh <<'RUN'
#!/usr/bin/env bash
# Runs the inmsrl recipe stages on this corpus; see ./inmsrl.sh --help for the options.
set -euo pipefail

./inmsrl.sh \
  --conf-dir conf \
  "$@"
RUN
chmod +x run.sh local/corpus.sh local/data.sh
echo "Created recipe ${target}. Next: write local/corpus.sh and local/data.sh, then ./run.sh --help"
