# shellcheck shell=bash
# Helpers for the pub/sub tests (load after helpers/common).
#
# ps_info NODE JQ          prints JQ applied to NODE's /v1/info .pubsub
# ps_true NODE JQ          the JQ expression holds for NODE's .pubsub
# ps_wait_subs NODE N      waits until NODE has N subscribers
# ps_wait_interest NODE PEER N
#                          waits until NODE knows N (pattern, group) pairs of
#                          PEER's interest
# ps_lines FILE            number of message lines in FILE

ps_info() { fd-node info -n "${FD_ADDR[$1]}" | jq -r ".pubsub | $2"; }
ps_true() { fd-node info -n "${FD_ADDR[$1]}" | jq -e ".pubsub | $2" >/dev/null; }
ps_wait_subs() { fd_wait_until 10s ps_true "$1" ".subscribers == $2"; }
ps_wait_interest() { fd_wait_until 10s ps_true "$1" ".peers[\"$2\"].interest == $3"; }
ps_lines() { grep -c '"type":"message"' "$1" || true; }
