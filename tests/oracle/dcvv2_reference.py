"""Independent reference implementation of dCVV2, written from protocol/dcvv2.md alone
(Python standard library only: hmac, hashlib, json). It never imports or runs cofre.

Differential mode (default): one JSON case per stdin line, one JSON answer per stdout line.
  {"op": "dcvv2", "key": hex, "pan": str, "expiry": str, "factor": int}
      -> {"code": "123"} or {"error": true}
  {"op": "time_step", "unix": int, "t0": int, "step": int}
      -> {"step": int} or {"error": true}
  {"op": "dcvv2_at", "key", "pan", "expiry", "unix", "t0", "step"}
      -> {"code": "123"} or {"error": true}     (time-step mode, section 4.2)
  {"op": "verify_window", "key", "pan", "expiry", "factor", "back", "forward", "presented"}
      -> {"step": int or null} or {"error": true}     (section 5)
Vector mode (`--vectors`): prints the worked examples of protocol/dcvv2.md with every
intermediate value, which is how that document's numbers were produced.
"""
import hashlib
import hmac
import json
import sys

LABEL = b"cofre-dcvv2-v1"


class Refused(Exception):
    pass


def message(pan, expiry, factor):
    # Section 2: label, PAN length byte, PAN ASCII, expiry ASCII, factor u64 BE.
    if not (12 <= len(pan) <= 19) or not all(c in "0123456789" for c in pan):
        raise Refused("pan")
    if len(expiry) != 4 or not all(c in "0123456789" for c in expiry):
        raise Refused("expiry")
    if not 1 <= int(expiry[2:]) <= 12:
        raise Refused("month")
    if not 0 <= factor < 2**64:
        raise Refused("factor")
    return LABEL + bytes([len(pan)]) + pan.encode("ascii") + expiry.encode("ascii") \
        + factor.to_bytes(8, "big")


def derive(key, pan, expiry, factor):
    """Returns every intermediate value: message, HMAC, offset, 31-bit value, code."""
    if len(key) not in (16, 32):
        raise Refused("key")
    msg = message(pan, expiry, factor)
    mac = hmac.new(key, msg, hashlib.sha256).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset:offset + 4], "big") & 0x7FFFFFFF
    return msg, mac, offset, value, "%03d" % (value % 1000)


def time_step(unix, t0, step):
    if step <= 0 or unix < t0:
        raise Refused("time")
    return (unix - t0) // step


def verify_window(key, pan, expiry, factor, back, forward, presented):
    if len(key) not in (16, 32):
        raise Refused("key")
    message(pan, expiry, factor)
    if len(presented) != 3 or not all(c in "0123456789" for c in presented):
        raise Refused("presented")
    if back > 10 or forward > 10:
        raise Refused("window")
    matched = None
    # Section 5: every step, clipped to the 64-bit range; the highest match is reported.
    for step in range(max(0, factor - back), min(2**64 - 1, factor + forward) + 1):
        if hmac.compare_digest(derive(key, pan, expiry, step)[4], presented):
            matched = step
    return matched


def answer(case):
    try:
        if case["op"] == "dcvv2":
            key = bytes.fromhex(case["key"])
            return {"code": derive(key, case["pan"], case["expiry"], case["factor"])[4]}
        if case["op"] == "time_step":
            return {"step": time_step(case["unix"], case["t0"], case["step"])}
        if case["op"] == "dcvv2_at":
            key = bytes.fromhex(case["key"])
            factor = time_step(case["unix"], case["t0"], case["step"])
            return {"code": derive(key, case["pan"], case["expiry"], factor)[4]}
        if case["op"] == "verify_window":
            c = case
            step = verify_window(bytes.fromhex(c["key"]), c["pan"], c["expiry"], c["factor"],
                                 c["back"], c["forward"], c["presented"])
            return {"step": step}
    except Refused:
        return {"error": True}
    raise ValueError("unknown op")


VECTORS = [
    # name, key hex, PAN, expiry, moving factor (or (unix, t0, step) for time-step mode)
    ("1: counter 0, 16-byte key", "000102030405060708090a0b0c0d0e0f",
     "4111111111111111", "2812", 0),
    ("2: counter 1, 32-byte key, 12-digit PAN",
     "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210",
     "123456789012", "3001", 1),
    ("3: large counter, 19-digit PAN", "2b7e151628aed2a6abf7158809cf4f3c",
     "6011000990139424123", "2706", 0x0123456789ABCDEF),
    ("4: time step, T0 0, 300 s", "404142434445464748494a4b4c4d4e4f",
     "5555555555554444", "2909", (1767225600, 0, 300)),
    ("5: time step, T0 1700000000, 600 s",
     "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f",
     "4000000000000002", "3112", (1800000123, 1700000000, 600)),
    ("6: zero padding (card of vector 1, counter 50)", "000102030405060708090a0b0c0d0e0f",
     "4111111111111111", "2812", 50),
    ("7: largest offset (card of vector 1, counter 5)", "000102030405060708090a0b0c0d0e0f",
     "4111111111111111", "2812", 5),
]


def print_vectors():
    """Prints each vector as the ```vector block that protocol/dcvv2.md carries."""
    for name, key_hex, pan, expiry, factor in VECTORS:
        print("```vector")
        print("name     " + name)
        print("key      " + key_hex.upper())
        print("pan      " + pan)
        print("expiry   " + expiry)
        if isinstance(factor, tuple):
            unix, t0, step = factor
            factor = time_step(unix, t0, step)
            print("unix     %d" % unix)
            print("t0       %d" % t0)
            print("step     %d" % step)
        msg, mac, offset, value, code = derive(bytes.fromhex(key_hex), pan, expiry, factor)
        print("factor   %d (%016X)" % (factor, factor))
        print("message  " + msg.hex().upper())
        print("hmac     " + mac.hex().upper())
        print("offset   %d (last byte %02X)" % (offset, mac[-1]))
        print("bytes    " + mac[offset:offset + 4].hex().upper())
        print("value    %d (%08X)" % (value, value))
        print("code     " + code)
        print("```")
        print()


def main():
    if sys.argv[1:] == ["--vectors"]:
        print_vectors()
        return
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(answer(json.loads(line))))


if __name__ == "__main__":
    main()
