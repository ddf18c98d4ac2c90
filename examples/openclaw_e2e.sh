#!/usr/bin/env bash
# OpenClaw through tentalis, end to end: install OpenClaw into a temporary directory,
# point it at a tentalis intercept proxy, hold a two-turn conversation under one OpenClaw
# session id, and check on the bridge that both turns were recorded, linked (the first
# turn's next state is the second user message) and carry token ids.
#
#   examples/openclaw_e2e.sh
#
# Without TENTALIS_PROXY_URL it starts `tentalis serve` itself (a temporary
# TENTALIS_HOME, its own embedded NATS, free ports, a random API key) and stops it at
# the end. To test a running one instead, set TENTALIS_PROXY_URL (its /v1),
# TENTALIS_BRIDGE_URL and TENTALIS_API_KEY.
#
# Other settings (environment):
#   OPENCLAW_VERSION   the OpenClaw release to install (2026.9.6)
#   OPENCLAW_CONFIG    the OpenClaw config (integrations/openclaw/config/smollm2.json5)
#   OPENCLAW_MODEL     provider/model for the turns (the config's primary model)
#   MAX_TOKENS         maxTokens of the config's models for this run (64: the checks need
#                      a recorded answer, not a long one; empty keeps the config's)
#   NODE_PACKAGE       the npm `node` package used when the system's Node is older than
#                      OpenClaw needs (node@24)
#   TENTALIS           how to run the tentalis CLI (`tentalis`, else `python3 -m tentalis`)
#   PYTHON             a Python for the checks (python3)
#   TURN_TIMEOUT       seconds per OpenClaw turn (600); SERVE_TIMEOUT for start-up (300)
#   KEEP_WORK=1        keep the temporary directory (kept anyway when a check fails)
#
# Prints each check; exits 0 when all pass, 1 when one fails, 2 when set-up fails.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OPENCLAW_VERSION=${OPENCLAW_VERSION:-2026.9.6}
OPENCLAW_CONFIG=${OPENCLAW_CONFIG:-$REPO/integrations/openclaw/config/smollm2.json5}
NODE_PACKAGE=${NODE_PACKAGE:-node@24}
PYTHON=${PYTHON:-python3}
TURN_TIMEOUT=${TURN_TIMEOUT:-600}
MAX_TOKENS=${MAX_TOKENS-64}
SERVE_TIMEOUT=${SERVE_TIMEOUT:-300}
if [[ -z ${TENTALIS:-} ]]; then
  if command -v tentalis >/dev/null; then TENTALIS=tentalis; else TENTALIS="$PYTHON -m tentalis"; fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/openclaw-e2e.XXXXXX")
T0=$(date +%s)
SERVE_PID=""
FAILED=0

say() { printf '[%4ds] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() { say "SETUP FAILED: $*"; exit 2; }

cleanup() {
  local rc=$?
  if [[ -n $SERVE_PID ]]; then
    if kill -0 "$SERVE_PID" 2>/dev/null; then
      say "stopping tentalis serve (pid $SERVE_PID)"
      kill -TERM "$SERVE_PID" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.5; done
    fi
    # Its process group (setsid): the supervisor's children, should any outlive it.
    kill -KILL -- "-$SERVE_PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 || ${KEEP_WORK:-0} == 1 ]]; then
    say "kept $WORK (serve.log, turn-*.json/.err, openclaw-home/.openclaw/openclaw.json)"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in npm curl setsid timeout "${PYTHON%% *}"; do
  command -v "$tool" >/dev/null || die "$tool is needed and not found"
done

# ---------------------------------------------------------------------------- Node
node_fits() {  # OpenClaw's engines: >=24.16.0 <25 || >=26.1.0
  command -v node >/dev/null && node -e '
    const [a, b] = process.versions.node.split(".").map(Number);
    process.exit((a === 24 && b >= 16) || a > 26 || (a === 26 && b >= 1) ? 0 : 1)'
}
if node_fits; then
  say "node $(node --version) (system)"
else
  say "node $(node --version 2>/dev/null || echo "not found") is too old for OpenClaw; installing $NODE_PACKAGE from npm"
  npm install --prefix "$WORK/node" --no-save --no-audit --no-fund --loglevel=error \
    "$NODE_PACKAGE" >"$WORK/npm-node.log" 2>&1 || die "npm install $NODE_PACKAGE (see npm-node.log)"
  export PATH="$WORK/node/node_modules/.bin:$PATH"
  node_fits || die "$NODE_PACKAGE gave node $(node --version); OpenClaw needs >=24.16 <25 or >=26.1"
  say "node $(node --version) ($NODE_PACKAGE)"
fi

# ---------------------------------------------------------------------------- OpenClaw
say "installing openclaw@$OPENCLAW_VERSION into $WORK/openclaw"
T_INSTALL=$(date +%s)
# An exact version: with a range, npm prefers a release whose `engines` fit the running
# Node, which on an old Node is the empty 0.0.1 placeholder.
npm install --prefix "$WORK/openclaw" --no-save --no-audit --no-fund --loglevel=error \
  "openclaw@$OPENCLAW_VERSION" >"$WORK/npm-openclaw.log" 2>&1 \
  || die "npm install openclaw@$OPENCLAW_VERSION (see npm-openclaw.log)"
INSTALLED=$(node -p "require('$WORK/openclaw/node_modules/openclaw/package.json').version")
[[ $INSTALLED == "$OPENCLAW_VERSION" ]] \
  || die "npm installed openclaw $INSTALLED, not $OPENCLAW_VERSION (the placeholder trap?)"
OPENCLAW="$WORK/openclaw/node_modules/.bin/openclaw"
say "$("$OPENCLAW" --version 2>/dev/null | head -1) installed in $(($(date +%s) - T_INSTALL)) s"

# ---------------------------------------------------------------------------- tentalis
http_ok() { curl -fsS -m 5 -o /dev/null "$1" 2>/dev/null; }
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [[ -z ${TENTALIS_PROXY_URL:-} ]]; then
  export TENTALIS_HOME="$WORK/tentalis" NATS_EMBEDDED=always
  BRIDGE_PORT=$(free_port); INTERCEPT_PORT=$(free_port); MODEL_SERVER_PORT=$(free_port)
  export BRIDGE_PORT INTERCEPT_PORT MODEL_SERVER_PORT
  TENTALIS_API_KEY="tnt-e2e-$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')"
  # One key for the three servers (serve gives the proxy its own key for the model server).
  export GATEWAY_API_KEYS=$TENTALIS_API_KEY
  # The model once per machine: reuse a converted SmolLM2 when one is cached.
  CACHED="${HOME}/.tentalis/models/smollm2-135m-instruct"
  if [[ -z ${LLM_MODEL:-} && -f $CACHED/manifest.json ]]; then export LLM_MODEL=$CACHED; fi
  TENTALIS_PROXY_URL="http://127.0.0.1:$INTERCEPT_PORT/v1"
  TENTALIS_BRIDGE_URL="http://127.0.0.1:$BRIDGE_PORT"
  say "starting tentalis serve (home $TENTALIS_HOME, proxy :$INTERCEPT_PORT, bridge :$BRIDGE_PORT, model server :$MODEL_SERVER_PORT)"
  setsid $TENTALIS serve --workers 1 >"$WORK/serve.log" 2>&1 &
  SERVE_PID=$!
  deadline=$(($(date +%s) + SERVE_TIMEOUT))
  until http_ok "http://127.0.0.1:$MODEL_SERVER_PORT/health" && http_ok "$TENTALIS_BRIDGE_URL/health" \
      && http_ok "http://127.0.0.1:$INTERCEPT_PORT/health"; do
    kill -0 "$SERVE_PID" 2>/dev/null || { tail -20 "$WORK/serve.log"; die "tentalis serve exited"; }
    (($(date +%s) < deadline)) || { tail -20 "$WORK/serve.log"; die "tentalis serve not up in ${SERVE_TIMEOUT}s"; }
    sleep 2
  done
  say "tentalis serve is up"
else
  : "${TENTALIS_BRIDGE_URL:?set TENTALIS_BRIDGE_URL with TENTALIS_PROXY_URL}"
  : "${TENTALIS_API_KEY:?set TENTALIS_API_KEY with TENTALIS_PROXY_URL}"
  http_ok "${TENTALIS_BRIDGE_URL%/}/health" || die "no bridge at $TENTALIS_BRIDGE_URL"
  say "using the running tentalis at $TENTALIS_PROXY_URL"
fi
export TENTALIS_PROXY_URL TENTALIS_BRIDGE_URL TENTALIS_API_KEY
export TENTALIS_SKILLS_DIR="$REPO/integrations/openclaw/skills"

# ---------------------------------------------------------------------------- two turns
# OpenClaw's state, config and workspace in the temporary directory only.
export OPENCLAW_HOME="$WORK/openclaw-home" OPENCLAW_STATE_DIR="$WORK/openclaw-home/.openclaw"
export OPENCLAW_CONFIG_PATH="$OPENCLAW_STATE_DIR/openclaw.json"
mkdir -p "$OPENCLAW_STATE_DIR" "$WORK/workspace"
if [[ -n $MAX_TOKENS ]]; then
  sed -E "s/^([[:space:]]*maxTokens:)[[:space:]]*[0-9]+/\1 $MAX_TOKENS/" "$OPENCLAW_CONFIG" >"$OPENCLAW_CONFIG_PATH"
else
  cp "$OPENCLAW_CONFIG" "$OPENCLAW_CONFIG_PATH"
fi
"$OPENCLAW" config validate >"$WORK/config-validate.log" 2>&1 \
  || { cat "$WORK/config-validate.log"; die "openclaw rejects $OPENCLAW_CONFIG"; }

SESSION="e2e-$(date +%s)-$$"
SINCE=$("$PYTHON" -c 'import time; print(time.time())')
MESSAGES=("Hi! My name is Ada and I like tea. Please answer in one short sentence."
          "What is my name? Answer in one short sentence.")
for i in 0 1; do
  say "turn $((i + 1)): openclaw agent --local --session-id $SESSION -m \"${MESSAGES[$i]}\""
  t=$(date +%s)
  set +e
  (cd "$WORK/workspace" && timeout -k 30 "$((TURN_TIMEOUT + 60))" "$OPENCLAW" agent --local \
      --session-id "$SESSION" --message "${MESSAGES[$i]}" --json --timeout "$TURN_TIMEOUT" \
      ${OPENCLAW_MODEL:+--model "$OPENCLAW_MODEL"}) >"$WORK/turn-$((i + 1)).json" 2>"$WORK/turn-$((i + 1)).err"
  rc=$?
  set -e
  reply=$("$PYTHON" - "$WORK/turn-$((i + 1)).json" <<'EOF'
import json, sys
try:
    out = json.load(open(sys.argv[1]))
except ValueError:
    sys.exit(0)
texts = [p.get("text") or "" for p in (out.get("result") or out).get("payloads") or []]
print(" ".join(t for t in texts if t).replace("\n", " ")[:200])
EOF
)
  say "  exit $rc after $(($(date +%s) - t)) s; reply: ${reply:-<none>}"
  if [[ $rc -ne 0 ]]; then
    tail -5 "$WORK/turn-$((i + 1)).err" | sed 's/^/    /'
    die "openclaw turn $((i + 1)) failed"
  fi
done

# ---------------------------------------------------------------------------- checks
say "checking the bridge at $TENTALIS_BRIDGE_URL"
set +e
"$PYTHON" "$REPO/examples/openclaw_e2e_check.py" --bridge "$TENTALIS_BRIDGE_URL" \
  --since "$SINCE" --expect "${MESSAGES[1]}" --timeout 60
FAILED=$?
set -e
say "done in $(($(date +%s) - T0)) s (install included)"
exit "$FAILED"
