#!/bin/sh
# Container entrypoint: `samverka-entrypoint node|hub [serve options…]`.
#
# First start (no samverka.toml in $SAMVERKA_DIR): create the folder —
#   node: samverka node init --kommun $SAMVERKA_INIT_KOMMUN
#   hub:  samverka hub init [--host NAME …from $SAMVERKA_INIT_HOSTS] [--store-url $SAMVERKA_STORE_URL]
#         (a URL without its password: that comes from $SAMVERKA_STORE_PASSWORD_FILE, a
#         compose/podman secret under /run/secrets; samverka.toml never holds it)
# then run `samverka doctor --offline` (refuses a broken folder, says why) and replace
# this shell with the server, so SIGTERM from the runtime reaches it directly.
# Every setting is an environment override: SAMVERKA_<SECTION>_<KEY> (docs/CONFIGURATION.md).
set -eu

role="${1:-node}"
[ "$#" -gt 0 ] && shift
dir="${SAMVERKA_DIR:-/var/lib/samverka}"
export SAMVERKA_DIR="$dir"

case "$role" in
  node)
    if [ ! -f "$dir/samverka.toml" ]; then
      : "${SAMVERKA_INIT_KOMMUN:?set SAMVERKA_INIT_KOMMUN to this kommun's kommunkod, e.g. 2029}"
      samverka node init --kommun "$SAMVERKA_INIT_KOMMUN" --dir "$dir" \
        --listen "${SAMVERKA_SERVER_LISTEN:-0.0.0.0:7443}"
    fi
    samverka doctor --offline --dir "$dir"
    exec samverka node serve --dir "$dir" "$@"
    ;;
  hub)
    if [ ! -f "$dir/samverka.toml" ]; then
      hosts=""
      for name in ${SAMVERKA_INIT_HOSTS:-}; do hosts="$hosts --host $name"; done
      # shellcheck disable=SC2086  # one --host per name
      samverka hub init --dir "$dir" $hosts \
        --listen "${SAMVERKA_SERVER_LISTEN:-0.0.0.0:7443}" \
        --public-listen "${SAMVERKA_PUBLIC_LISTEN:-0.0.0.0:7444}" \
        --address "${SAMVERKA_HUB_ADDRESS:-}" \
        --store-url "${SAMVERKA_STORE_URL:-}"
    fi
    samverka doctor --offline --dir "$dir"
    exec samverka hub serve --dir "$dir" "$@"
    ;;
  *)
    # Anything else is a samverka command: `docker compose run hub hub members pending`.
    exec samverka "$role" "$@"
    ;;
esac
