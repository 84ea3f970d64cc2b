"""The daemon as protocol/README.md, algorithms.md, keys.md and dcvv2.md describe it, for
protocol_vectors.py: the specification's tables read from README.md, the example keys,
configuration and policy of keys-example/, and what each operation answers, step by
step in the specification's order of checks. Written from those pages with Python's
hmac/hashlib, `cryptography`, `psec` and the other oracles of this folder; never
cofre's code.
"""
import hashlib
import hmac
import os
import sys
import tomllib
import warnings

warnings.filterwarnings("ignore")

import psec  # noqa: E402
from cryptography.hazmat.primitives import cmac  # noqa: E402
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import ff1_tokens  # noqa: E402


def read(*path):
    with open(os.path.join(ROOT, *path), encoding="utf-8") as f:
        return f.read()


# ---- the specification's tables ----

def table(text, heading):
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append([c.strip().strip("`") for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[2:]


SPEC = read("protocol", "README.md")
STATUS = {r[1]: int(r[0]) for r in table(SPEC, "## Status codes")}
STATUS_NAME = {v: k for k, v in STATUS.items()}
OPCODE = {int(r[0], 16): r[1] for r in table(SPEC, "## Opcodes")}
TAGS = {int(r[0], 16): (r[1], r[2]) for r in table(SPEC, "## Field tags")}
TAG = {name: code for code, (name, _) in TAGS.items()}

# README.md, "DUKPT input": pin_key_type -> (X9.24-3-2017 key type name, key bytes).
AES_PIN_KEY_TYPES = {2: ("AES-128", 16), 3: ("AES-192", 24), 4: ("AES-256", 32)}

# The fields each operation uses (README.md, "Operations"; keys.md for administration).
CARD = ["pan", "token", "token_version"]
IBM = ["decimalization", "validation_start", "validation_length", "pad"]
VERIFY = CARD + ["key", "format", "pin_block", "pvk", "pvv", "pvki", "offset"] + IBM
USES = {
    "health": [],
    "pan.generate": ["bin", "pan_length", "alphabet", "transport_key"],
    "pan.tokenise": ["pan", "alphabet"],
    "pan.detokenise": ["token", "token_version"],
    "pin.verify": VERIFY + ["ksn", "pin_key_type"],
    "pin.translate": CARD + ["key", "ksn", "pin_key_type", "format", "pin_block", "dest_key",
                             "dest_format", "dest_pan", "pin_blob"],
    "pin.generate": CARD + ["pvk", "method", "pin_length", "pvki", "delivery_key", "format",
                            "weak_digits"] + IBM,
    "pin.change": VERIFY + ["new_pin_block", "weak_digits"],
    "pin.deliver": CARD + ["pin_blob", "delivery_key", "format"],
    "pin.attempts": CARD,
    "pin.attempts.reset": CARD,
    "pin.guard.reset": [],
    "pin.random": CARD + ["pin_length", "weak_digits"],
    "pin.reference": CARD + ["pin_blob", "pvk", "method", "pvki"] + IBM,
    "pin.rebind": CARD + ["pin_blob", "new_pan", "new_token", "new_token_version", "pvk",
                          "method", "pvki"] + IBM,
    "cvv.generate": CARD + ["key", "expiry", "service_code"],
    "cvv.verify": CARD + ["key", "expiry", "service_code", "cvv"],
    "card.codes.export": CARD + ["key", "expiry", "service_code", "transport_key", "pin_blob",
                                 "format"],
    "dcvv2.generate": CARD + ["key", "expiry", "counter", "unix_time", "transport_key"],
    "dcvv2.verify": CARD + ["key", "expiry", "counter", "unix_time", "dcvv2", "window"],
    "dcvv2.enable": CARD,
    "dcvv2.disable": CARD,
    "dcvv2.state": CARD,
    "mac.generate": ["key", "data", "mac_algorithm"],
    "mac.verify": ["key", "data", "mac", "mac_algorithm"],
    "key.list": [],
    "key.generate": ["key", "kind", "algorithm", "key_length", "exportable", "mac_min_length"],
    "key.import": ["key", "kind", "kek", "key_block", "mac_min_length"],
    "key.export": ["key", "kek", "key_version"],
    "key.rotate": ["key"],
    "key.retire": ["key", "key_version"],
}
KEY_FIELDS = ["key", "dest_key", "pvk", "delivery_key", "transport_key", "kek"]

# keys.md, "Kinds": algorithms and lengths (the first is the default).
LENGTHS = {"tdes": [16, 24], "aes": [32, 16, 24]}
KINDS = {
    "zpk": {"tdes": LENGTHS["tdes"], "aes": LENGTHS["aes"]},
    "tpk": {"tdes": LENGTHS["tdes"], "aes": LENGTHS["aes"]},
    "pvk": {"tdes": [16, 24]},
    "cvk": {"tdes": [16]},
    "dcvv2": {"hmac": [32, 16]},
    "token": {"aes": LENGTHS["aes"]},
    "lookup": {"hmac": [32]},
    "mac": {"tdes": [16], "aes": LENGTHS["aes"], "hmac": [32]},
    "kek": {"tdes": LENGTHS["tdes"], "aes": LENGTHS["aes"]},
    "transport": {"tdes": LENGTHS["tdes"], "aes": LENGTHS["aes"]},
    "pin-delivery": {"tdes": LENGTHS["tdes"], "aes": LENGTHS["aes"]},
    "bdk": {"tdes": LENGTHS["tdes"], "aes": LENGTHS["aes"]},
}
# keys.md, "TR-31 headers": usage, mode per kind; the usages import also accepts.
HEADER = {
    "zpk": (["P0"], "B"), "tpk": (["P0"], "B"), "pin-delivery": (["P0"], "E"),
    "pvk": (["V0", "V1", "V2"], "C"), "cvk": (["C0"], "C"), "dcvv2": (["10"], "C"),
    "token": (["D0"], "B"), "lookup": (["11"], "C"), "kek": (["K0", "K1"], "B"),
    "transport": (["D0"], "E"), "bdk": (["B0"], "X"),
    "mac": ({"T": ["M3"], "A": ["M6"], "H": ["M7"]}, "C"),
}
ALG_CODE = {"T": "tdes", "A": "aes", "H": "hmac"}
# What each operation asks a key to be (README.md, "Operations").
NEEDS = {
    ("pin.verify", "key"): ("zpk", "tpk"), ("pin.change", "key"): ("zpk", "tpk"),
    ("pin.translate", "key"): ("zpk", "tpk"), ("pin.translate", "dest_key"): ("zpk", "tpk"),
    ("pin.verify", "pvk"): ("pvk",), ("pin.change", "pvk"): ("pvk",),
    ("pin.generate", "pvk"): ("pvk",), ("pin.rebind", "pvk"): ("pvk",),
    ("pin.reference", "pvk"): ("pvk",),
    ("cvv.generate", "key"): ("cvk",), ("cvv.verify", "key"): ("cvk",),
    ("card.codes.export", "key"): ("cvk",), ("card.codes.export", "transport_key"): ("transport",),
    ("pan.generate", "transport_key"): ("transport",),
    ("dcvv2.generate", "key"): ("dcvv2",), ("dcvv2.verify", "key"): ("dcvv2",),
    ("dcvv2.generate", "transport_key"): ("transport",),
    ("mac.generate", "key"): ("mac",), ("mac.verify", "key"): ("mac",),
    ("key.import", "kek"): ("kek",), ("key.export", "kek"): ("kek",),
}


def delivery_kinds():
    config = tomllib.loads(read("keys-example", "hsm.toml"))
    allowed = ("pin-delivery", "transport") if config.get("pin_delivery_transport_keys") \
        else ("pin-delivery",)
    return allowed


# ---- the example set ----

def example_keys():
    keys = {}
    readme = read("keys-example", "README.md")
    for line in readme.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 6:
            ident, kind, alg, clear, kcv, exportable = cells
            keys[ident] = {"kind": kind, "alg": alg.split("-")[0].lower(),
                           "key": bytes.fromhex(clear), "kcv": kcv,
                           "exportable": exportable == "yes", "min": None}
    return keys


POLICY = tomllib.loads(read("keys-example", "policy.toml"))
CONFIG = tomllib.loads(read("keys-example", "hsm.toml"))


def matches(pattern, value):
    return value.startswith(pattern[:-1]) if pattern.endswith("*") else pattern == value


def role_of(identity):
    name = POLICY["clients"].get(identity)
    return (name, POLICY["roles"][name]) if name else (None, None)


# ---- the algorithms (algorithms.md) ----

def tdes_ecb(key, data, decrypt=False):
    c = Cipher(algorithms.TripleDES(key), modes.ECB())
    x = c.decryptor() if decrypt else c.encryptor()
    return x.update(data) + x.finalize()


def aes_ecb(key, data, decrypt=False):
    c = Cipher(algorithms.AES(key), modes.ECB())
    x = c.decryptor() if decrypt else c.encryptor()
    return x.update(data) + x.finalize()


def cbc_decrypt(alg, key, iv, data):
    a = algorithms.TripleDES(key) if alg == "tdes" else algorithms.AES(key)
    d = Cipher(a, modes.CBC(iv)).decryptor()
    return d.update(data) + d.finalize()


def kcv(alg, key):
    if alg == "tdes":
        return tdes_ecb(key, bytes(8))[:3].hex().upper()
    if alg == "aes":
        m = cmac.CMAC(algorithms.AES(key))
        m.update(bytes(16))
        return m.finalize()[:3].hex().upper()
    return hmac.new(key, bytes(16), hashlib.sha256).digest()[:3].hex().upper()


class Bad(Exception):
    """A PIN block that breaks ISO 9564."""


def pan_field(pan):
    digits = pan[:-1][-12:].rjust(12, "0")
    return bytes.fromhex("0000" + digits)


def decode_pin_block(fmt, alg, key, block, pan):
    if fmt == 4:
        try:
            return psec.pinblock.decipher_pinblock_iso_4(key, block, pan)
        except Exception as e:
            raise Bad(str(e))
    clear = tdes_ecb(key, block, decrypt=True)
    if fmt in (0, 3):
        clear = bytes(a ^ b for a, b in zip(clear, pan_field(pan)))
    nib = clear.hex().upper()
    if int(nib[0], 16) != fmt:
        raise Bad("control")
    n = int(nib[1], 16)
    if not 4 <= n <= 12 or not nib[2:2 + n].isdigit():
        raise Bad("length")
    fill = nib[2 + n:]
    if fmt == 0 and set(fill) != {"F"}:
        raise Bad("fill")
    if fmt == 3 and not all(c in "ABCDEF" for c in fill):
        raise Bad("fill")
    return nib[2:2 + n]


def encode_iso0(key, pin, pan):
    field = ("0" + "%X" % len(pin) + pin).ljust(16, "F")
    clear = bytes(a ^ b for a, b in zip(bytes.fromhex(field), pan_field(pan)))
    return tdes_ecb(key, clear)


def pvv(pvk, pvki, pin, pan):
    return psec.pin.generate_visa_pvv(pvk, str(pvki), pin[:4], pan)


def ibm_offset(pvk, pin, pan):
    """The IBM 3624 offset of `pin`, as many digits as the PIN, with the default
    validation data (the 12 PAN digits before the check digit, then F) and table."""
    table = "0123456789012345"
    vd = (pan[len(pan) - 13:len(pan) - 1]).ljust(16, "F")
    inter = "".join(table[int(c, 16)] for c in tdes_ecb(pvk, bytes.fromhex(vd)).hex())
    return "".join(str((int(p) - int(q)) % 10) for p, q in zip(pin, inter[:len(pin)]))


def ibm_offset_matches(pvk, pin, pan, offset):
    n, m = len(pin), len(offset)
    if m > n:
        return False
    return ibm_offset(pvk, pin, pan)[n - m:] == offset


def cvv(cvk, pan, expiry, sc):
    return psec.cvv.generate_cvv(cvk, pan, expiry, sc)


def mac_of(alg, key, data):
    if alg == "tdes":
        return psec.mac.generate_retail_mac(key[:8], key[8:], data, 1)
    if alg == "aes":
        m = cmac.CMAC(algorithms.AES(key))
        m.update(data)
        return m.finalize()
    return hmac.new(key, data, hashlib.sha256).digest()


# ---- frames ----

def fields_of(body):
    out, i = [], 0
    while i < len(body):
        if i + 3 > len(body):
            return out, ("structure", body[i])
        tag, n = body[i], int.from_bytes(body[i + 1:i + 3], "big")
        if i + 3 + n > len(body):
            return out, ("structure", tag)
        out.append((tag, body[i + 3:i + 3 + n]))
        i += 3 + n
    return out, None


def value_fits(tag, v):
    ty = TAGS[tag][1]
    return {"u8": len(v) == 1, "u32": len(v) == 4, "u64": len(v) == 8,
            "bool": len(v) == 1 and v[0] in (0, 1),
            "str": len(v) <= 255 and all(0x20 <= b <= 0x7E for b in v)}.get(ty, True)


def typed(tag, v):
    ty = TAGS[tag][1]
    if ty in ("u8", "u32", "u64"):
        return int.from_bytes(v, "big")
    if ty == "bool":
        return v[0] == 1
    if ty in ("str", "text"):
        return v.decode()
    return v


class Answer(Exception):
    """The daemon's answer, decided: status name, fields (name -> value), field, reason."""

    def __init__(self, status, fields=None, field=None, reason=None):
        super().__init__(status)
        self.status, self.fields, self.field, self.reason = status, fields or {}, field, reason


def refuse(status, field=None, reason=None):
    raise Answer(status, field=field, reason=reason)


def malformed(name, reason=None):
    refuse("malformed_field", TAG[name], reason)


# ---- the daemon as the specification describes it ----

class DaemonBase:
    def __init__(self):
        self.keys = example_keys()
        self.token_key = self.keys[CONFIG["token_key"]]["key"]
        self.lookup_key = self.keys[CONFIG["lookup_key"]]["key"]
        self.pin_tries = {}
        self.dcvv2 = {}  # pan -> (enabled, last used factor)
        # pin_blob -> (PIN, PAN) for the blobs whose PIN this model knows: a blob is
        # opaque (algorithms.md), so only an answer sealing a PIN the model deciphered
        # itself (pin.translate into the LMK form) tells it; see protocol_vectors.py.
        self.blobs = {}
        self.expect_blob = None

    # Steps 1-9 of "Order of checks".
    def admit(self, identity, payload):
        if len(payload) < 8:
            refuse("malformed_field", reason="frame_error")
        version, msg_type, opcode = payload[0], payload[1], int.from_bytes(payload[2:4], "big")
        if version != 1:
            refuse("unsupported_version")
        if msg_type != 1:
            refuse("malformed_field")
        op = OPCODE.get(opcode)
        if op is None:
            refuse("unknown_operation")
        role_name, role = role_of(identity)
        if role is None or not any(matches(p, op) for p in role["operations"]):
            refuse("not_authorised")
        fields, broken = fields_of(payload[8:])
        if broken:
            refuse("malformed_field", broken[1])
        seen = set()
        for tag, v in fields:
            if tag not in TAGS or tag in seen or not value_fits(tag, v):
                refuse("malformed_field", tag)
            seen.add(tag)
        for tag, _ in fields:
            if TAGS[tag][0] not in USES[op]:
                refuse("malformed_field", tag)
        f = {TAGS[t][0]: typed(t, v) for t, v in fields}
        for name in KEY_FIELDS:
            if name in f and not any(matches(p, f[name]) for p in role.get("keys", [])):
                refuse("not_authorised")
        return op, f, role_name

    # Step 10 for the fields the vectors carry.
    def values(self, op, f):
        def need(name):
            if name not in f:
                malformed(name)
            return f[name]
        if "pan" in f and not (12 <= len(f["pan"]) <= 19 and f["pan"].isdigit()):
            malformed("pan")
        if op in USES and "pan" in USES[op] and op != "pan.tokenise":
            if "pan" in f and "token" in f:
                malformed("token")
            if "pan" not in f and "token" not in f:
                malformed("pan")
            if "pan" in f and "token_version" in f:
                malformed("token_version")
        if "expiry" in USES.get(op, []):
            e = need("expiry")
            if not (len(e) == 4 and e.isdigit() and 1 <= int(e[2:]) <= 12):
                malformed("expiry")
        if "service_code" in f and not (len(f["service_code"]) == 3 and f["service_code"].isdigit()):
            malformed("service_code")
        if "ksn" in f and len(f["ksn"]) not in (10, 12):
            malformed("ksn")
        # README.md, "DUKPT input": pin_key_type only with a 12-byte KSN, and only the AES
        # algorithm indicators of X9.24-3-2017 (2, 3, 4).
        if "pin_key_type" in f and (len(f.get("ksn", b"")) != 12
                                    or f["pin_key_type"] not in AES_PIN_KEY_TYPES):
            malformed("pin_key_type")
        if "format" in f and op in ("pin.verify", "pin.change", "pin.translate") and f["format"] > 4:
            malformed("format")
        # README.md, "DUKPT input": TDES DUKPT carries formats 0, 1, 3; AES DUKPT 4 only
        # (format 2 is left to the rules every key shares).
        if "ksn" in f and "format" in f and f["format"] != 2:
            carried = (0, 1, 3) if len(f["ksn"]) == 10 else (4,)
            if f["format"] not in carried:
                malformed("format")
        if "pin_block" in f and "format" in f and f["format"] <= 4:
            if len(f["pin_block"]) != (16 if f["format"] == 4 else 8):
                malformed("pin_block")
        if "pin_blob" in f and len(f["pin_blob"]) != 25:
            malformed("pin_blob")
        if op == "dcvv2.verify":
            code = need("dcvv2")
            if not (len(code) == 3 and code.isdigit()):
                malformed("dcvv2")

    def card(self, f, pan="pan", token="token", version="token_version"):
        if pan in f:
            return f[pan], None
        t = f[token]
        alphabet = 1 if any(c.isalpha() for c in t) else 0
        try:
            return ff1_tokens.detokenise(self.token_key, t, alphabet), 1
        except (ValueError, IndexError):
            refuse("invalid_token")

    def key(self, op, name, ident, kinds=None):
        k = self.keys.get(ident)
        if k is None:
            refuse("unknown_key")
        kinds = kinds or NEEDS.get((op, name))
        if kinds and k["kind"] not in kinds:
            refuse("wrong_key_usage")
        return k

    def run(self, identity, payload):
        op, f, role = self.admit(identity, payload)
        self.values(op, f)
        return getattr(self, "op_" + op.replace(".", "_"))(op, f, role)
