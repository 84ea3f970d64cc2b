"""Reproduces every golden frame of protocol/vectors/ from the specification alone:
protocol/README.md (frames, the order of checks, statuses, operations, roles),
protocol/algorithms.md, protocol/keys.md, protocol/dcvv2.md, and the example keys,
configuration and policy of keys-example/ (their clear values are published). Written
from those pages, with Python's hmac/hashlib, `cryptography`, `psec`, `pydukpt`, and
the other independent oracles of this folder (ff1_tokens.py, dcvv2_reference.py,
dukpt_aes_reference.py): never cofre's code.

For each vector it parses the request, decides from the specification what the daemon
must answer (status, `field`, `reason`, and every field's value), and compares that with
the recorded response. Values the vector lists under `ignore` (random or time-dependent)
are checked by property instead: an `encrypted` PAN must decrypt to a PAN whose token is
the answer's token, a `key_block` must unwrap under the KEK with the header keys.md
gives, and so on. Messages are human text and are not compared.

Exit status 0 and a last line "N vectors reproduced" when every vector agrees; otherwise
one line per disagreement on stderr and exit status 1. tests/hsm_spec_oracle.rs runs it.
"""
import os
import sys

from protocol_model import (  # noqa: E402
    ROOT, STATUS_NAME, TAGS, Answer, cbc_decrypt, fields_of, read, tdes_ecb, typed,
)
from protocol_ops import Daemon  # noqa: E402
import ff1_tokens  # noqa: E402
import psec  # noqa: E402


# ---- vectors ----

def parse_vectors(text):
    out = []
    for block in text.strip("\n").split("\n\n"):
        v = {"ignore": []}
        for line in block.splitlines():
            key, _, value = line.partition(" ")
            value = value.strip()
            if key == "#":
                v["name"] = value
            elif key == "ignore":
                v["ignore"] = value.split()
            else:
                v[key] = value
        out.append(v)
    return out


def response_fields(frame):
    body = frame[14:]
    fields, _ = fields_of(body)
    return {TAGS[t][0]: typed(t, v) for t, v in fields if t in TAGS}


def check(daemon, v):
    """Disagreements between the specification's answer and the recorded one."""
    req, resp = bytes.fromhex(v["request"]), bytes.fromhex(v["response"])
    payload = req[4:]
    got_status = STATUS_NAME.get(int.from_bytes(resp[12:14], "big"))
    got = response_fields(resp)
    daemon.expect_code_block = daemon.expect_export = daemon.expect_blob = None
    try:
        fields = daemon.run(v["identity"], payload)
        want = Answer("ok", fields)
    except Answer as a:
        want = a
    problems = []
    if want.status != got_status:
        return ["status %s, the specification says %s" % (got_status, want.status)]
    opcode = int.from_bytes(payload[2:4], "big") if want.reason != "frame_error" else 0
    rid = int.from_bytes(payload[4:8], "big") if want.reason != "frame_error" else 0
    if (int.from_bytes(resp[6:8], "big"), int.from_bytes(resp[8:12], "big")) != (opcode, rid):
        problems.append("opcode or request id not echoed as specified")
    if want.status != "ok":
        want_fields = {"message"} | ({"field"} if want.field is not None else set()) \
            | ({"reason"} if want.reason else set())
        if set(got) != want_fields:
            problems.append("fields %s, the specification says %s" % (sorted(got), sorted(want_fields)))
        if want.field is not None and got.get("field") != want.field:
            problems.append("field %s, the specification says %s" % (got.get("field"), want.field))
        if want.reason and got.get("reason") != want.reason:
            problems.append("reason %s, the specification says %s" % (got.get("reason"), want.reason))
        return problems
    if set(got) != set(want.fields):
        problems.append("fields %s, the specification says %s" % (sorted(got), sorted(want.fields)))
    for name, value in want.fields.items():
        if value is not None and got.get(name) != value:
            problems.append("%s = %r, the specification says %r" % (name, got.get(name), value))
    problems += properties(daemon, v, got)
    return problems


def properties(daemon, v, got):
    """What the ignored (random) values must satisfy."""
    out = []
    if "pin_blob" in got and daemon.expect_blob:
        # A blob sealing a PIN the model knows: later vectors name it (pin.reference,
        # pin.translate from the LMK form), and their exact values follow from it.
        daemon.blobs[bytes(got["pin_blob"])] = daemon.expect_blob
    if "encrypted" in got and daemon.expect_code_block:
        key, code = daemon.expect_code_block
        clear = tdes_ecb(key, got["encrypted"], decrypt=True).hex().upper()
        if len(got["encrypted"]) != 8 or clear[:5] != "13" + code:
            out.append("the code block does not hold 13%s" % code)
    if "key_block" in got and daemon.expect_export:
        kek, header, key = daemon.expect_export
        h, k = psec.tr31.unwrap(kek, got["key_block"])
        if got["key_block"][0] + "0000" + got["key_block"][5:16] != header or k != key:
            out.append("the exported block's header is not %s" % header)
    if "token" in got and "lookup_token" in got:
        alphabet = 1 if any(c.isalpha() for c in got["token"]) else 0
        try:
            pan = ff1_tokens.detokenise(daemon.token_key, got["token"], alphabet)
        except ValueError:
            return out + ["the token is no token under the token key"]
        if got["lookup_token"] != ff1_tokens.lookup_token(daemon.lookup_key, pan) \
                or got["masked_pan"] != pan[:6] + "*" * (len(pan) - 10) + pan[-4:] \
                or not ff1_tokens.luhn_valid(pan):
            out.append("the token, lookup token and masked PAN do not name one valid PAN")
        if "encrypted" in got:
            t = daemon.keys["transport.example"]
            iv, ct = got["encrypted"][:8], got["encrypted"][8:]
            clear = cbc_decrypt(t["alg"], t["key"], iv, ct)
            if clear[:clear.rindex(b"\x80")].decode() != pan:
                out.append("the encrypted PAN is not the token's PAN")
    return out


def main():
    daemon = Daemon()
    # The vectors of protocol/vectors/, or of the directory given (the test gives altered
    # copies, to show that a wrong answer is caught).
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "protocol", "vectors")
    count, failures = 0, []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".txt"):
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as file:
            vectors = parse_vectors(file.read())
        for v in vectors:
            for p in check(daemon, v):
                failures.append("%s / %s: %s" % (name, v["name"], p))
            count += 1
    for line in failures:
        print(line, file=sys.stderr)
    print("%d vectors reproduced" % (count - len({f.split(":")[0] for f in failures})))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
