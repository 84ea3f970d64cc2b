"""Independent TR-31 oracle for tests/tr31_psec.rs: one JSON case per stdin line, one JSON
answer per stdout line. Uses psec's tr31 module only, never cofre's code.

Cases:
  {"op": "unwrap", "kbpk": hex, "block": str}
      -> {"ok": true, "key": HEX, "version", "usage", "algorithm", "mode", "key_version",
          "exportability", "context", "blocks": [[id, data], ...]}
      or {"ok": false, "error": str} when psec refuses the block.
  {"op": "wrap", "kbpk": hex, "header": str, "key": hex} -> {"ok": true, "block": str}
"""
import json
import sys
import warnings

warnings.filterwarnings("ignore")

from psec import tr31


def answer(c):
    kbpk = bytes.fromhex(c["kbpk"])
    if c["op"] == "unwrap":
        try:
            header, key = tr31.unwrap(kbpk, c["block"])
        except (tr31.KeyBlockError, tr31.HeaderError) as e:
            return {"ok": False, "error": str(e)}
        return {
            "ok": True,
            "key": key.hex().upper(),
            "version": header.version_id,
            "usage": header.key_usage,
            "algorithm": header.algorithm,
            "mode": header.mode_of_use,
            "key_version": header.version_num,
            "exportability": header.exportability,
            "context": header.reserved,
            "blocks": [[k, v] for k, v in header.blocks.items()],
        }
    if c["op"] == "wrap":
        return {"ok": True, "block": tr31.wrap(kbpk, c["header"], bytes.fromhex(c["key"]))}
    raise ValueError("unknown op " + c["op"])


for line in sys.stdin:
    print(json.dumps(answer(json.loads(line))))
