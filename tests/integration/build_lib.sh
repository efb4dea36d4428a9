# Sourced by the tests given the build folder (Usage: . build_lib.sh BUILD_DIR): every binary's path, then lib.sh.
BUILD=$(cd "$1" && pwd)
CA_BIN=$BUILD/ca/camtrust-ca
STATION_BIN=$BUILD/provision/camtrust-station
AGENT_BIN=$BUILD/device-agent/camtrust-agent
SIM_BIN=$BUILD/device-agent/camtrust-agent-sim
VERIFY_BIN=$BUILD/verify/camtrust-verify
VIEW_BIN=$BUILD/view/camtrust-view
CLIENT_BIN=$BUILD/tests/factory_client
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
