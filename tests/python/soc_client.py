#!/usr/bin/env python3
"""A SOC tool's view of an intelmq-rs node: a plain Python gRPC client generated from the .proto.

usage: soc_client.py PROTO_DIR TARGET BOT_ID
  PROTO_DIR  folder holding intelmq/control/v1/control.proto
  TARGET     gRPC target, e.g. unix:/opt/intelmq/var/run/control.sock
  BOT_ID     a bot to stop and start again

Prints one JSON object with what it saw; exits non-zero on any gRPC error.
"""
import json
import sys
import tempfile

import grpc
from grpc_tools import protoc


def main():
    proto_dir, target, bot_id = sys.argv[1:4]
    out = tempfile.mkdtemp(prefix="intelmq-grpc-")
    rc = protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out}", f"--grpc_python_out={out}",
                      "intelmq/control/v1/control.proto"])
    if rc != 0:
        sys.exit(f"protoc failed with {rc}")
    sys.path.insert(0, out)
    from intelmq.control.v1 import control_pb2 as pb
    from intelmq.control.v1 import control_pb2_grpc as rpc

    # The default :authority of a unix: target is the socket path, which HTTP/2 servers refuse.
    channel = grpc.insecure_channel(target, options=[("grpc.default_authority", "localhost")])
    stub = rpc.ControlStub(channel)
    seen = {}
    bots = stub.ListBots(pb.ListBotsRequest(configured=True)).bots
    seen["configured"] = [b.bot_id for b in bots]
    catalogue = json.loads(stub.ListBots(pb.ListBotsRequest()).catalogue_json)
    seen["catalogue_groups"] = sorted(catalogue)
    sel = pb.BotSelector(bot_id=bot_id)
    seen["after_stop"] = [b.state for b in stub.StopBot(pb.StopBotRequest(selector=sel)).bots]
    seen["status_stopped"] = [b.state for b in stub.GetStatus(pb.GetStatusRequest(selector=sel)).bots]
    seen["after_start"] = [b.state for b in stub.StartBot(pb.StartBotRequest(selector=sel)).bots]
    stats = stub.GetStats(pb.GetStatsRequest())
    seen["stats"] = {s.bot_id: {"received": s.received, "sent": s.sent, "state": s.state} for s in stats.bots}
    try:
        stub.GetStatus(pb.GetStatusRequest(selector=pb.BotSelector(bot_id="no-such-bot")))
        seen["unknown_bot"] = "OK"
    except grpc.RpcError as e:
        seen["unknown_bot"] = e.code().name
    print(json.dumps(seen, sort_keys=True))


if __name__ == "__main__":
    main()
