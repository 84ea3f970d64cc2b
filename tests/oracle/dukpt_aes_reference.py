"""Independent reference implementation of AES DUKPT (ANSI X9.24-3-2017), host side,
written from the standard's description of the algorithm (section 6: KSN layout,
derivation data of 6.3.2, the key derivation function of 6.3.3, the transaction
counter rules of 6.1). No installable Python package implements AES DUKPT, so this plays
the part psec plays elsewhere; it never imports or runs cofre. AES and TDES come from the
`cryptography` package; ISO 9564 format 4 PIN blocks from psec.

One JSON case per stdin line, one JSON answer per stdout line:
  {"op": "initial_key", "bdk", "ksn"}                         -> {"key"}
  {"op": "transaction_key", "bdk", "ksn"}                     -> {"key"} | {"error": true}
  {"op": "working_key", "bdk", "ksn", "usage", "key_type"}    -> {"key"} | {"error": true}
  {"op": "pin_decipher", "bdk", "ksn", "key_type", "format", "block", "pan"}
                                                              -> {"pin"} | {"error": true}
  {"op": "pin_encipher", "bdk", "ksn", "key_type", "format", "pin", "pan"} -> {"block"}
Hex is upper case; key types are "2TDEA", "3TDEA", "AES-128", "AES-192", "AES-256".
"""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")

import psec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class Refused(Exception):
    pass


# 6.3.2, algorithm indicator and key length in bits of each key type.
KEY_TYPES = {
    "2TDEA": (0x0000, 128),
    "3TDEA": (0x0001, 192),
    "AES-128": (0x0002, 128),
    "AES-192": (0x0003, 192),
    "AES-256": (0x0004, 256),
}
# 6.3.2, key usage indicator.
USAGES = {
    "key-encryption": 0x0002,
    "pin": 0x1000,
    "mac-generate": 0x2000,
    "mac-verify": 0x2001,
    "mac-both": 0x2002,
    "data-encrypt": 0x3000,
    "data-decrypt": 0x3001,
    "data-both": 0x3002,
}
KEY_DERIVATION = 0x8000
KEY_DERIVATION_INITIAL_KEY = 0x8001
AES_TYPE_OF_LENGTH = {16: "AES-128", 24: "AES-192", 32: "AES-256"}


def aes_ecb(key, block):
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def tdes_ecb(key, data, decrypt=False):
    c = Cipher(algorithms.TripleDES(key), modes.ECB())
    op = c.decryptor() if decrypt else c.encryptor()
    return op.update(data) + op.finalize()


def derivation_data(usage, key_type, last8):
    indicator, bits = KEY_TYPES[key_type]
    # Version 01, block counter (set per block in derive_key), usage, algorithm, length.
    return bytes([0x01, 0x01]) + usage.to_bytes(2, "big") + indicator.to_bytes(2, "big") \
        + bits.to_bytes(2, "big") + last8


def derive_key(derivation_key, key_type, data):
    """6.3.3: as many AES-ECB blocks as the key length needs, block counter from 1."""
    length = KEY_TYPES[key_type][1] // 8
    out = b""
    for i in range((length + 15) // 16):
        out += aes_ecb(derivation_key, data[:1] + bytes([i + 1]) + data[2:])
    return out[:length]


def parse_ksn(ksn_hex):
    ksn = bytes.fromhex(ksn_hex)
    if len(ksn) != 12:
        raise Refused("ksn")
    return ksn[:8], ksn[4:8], int.from_bytes(ksn[8:], "big")


def check_counter(counter):
    # 6.1: counters have at most 16 one-bits; the last usable one is FFFF0000; counter 0
    # belongs to the initial key, not to a transaction.
    if counter == 0 or counter > 0xFFFF0000 or bin(counter).count("1") > 16:
        raise Refused("counter")


def initial_key(bdk, ksn_hex):
    if len(bdk) not in AES_TYPE_OF_LENGTH:
        raise Refused("bdk")
    bdk_type = AES_TYPE_OF_LENGTH[len(bdk)]
    ik_id, _, _ = parse_ksn(ksn_hex)
    return derive_key(bdk, bdk_type, derivation_data(KEY_DERIVATION_INITIAL_KEY, bdk_type, ik_id)), bdk_type


def transaction_key(bdk, ksn_hex):
    key, key_type = initial_key(bdk, ksn_hex)
    _, derivation_id, counter = parse_ksn(ksn_hex)
    check_counter(counter)
    running = 0
    for shift in range(31, -1, -1):
        bit = 1 << shift
        if counter & bit:
            running |= bit
            data = derivation_data(KEY_DERIVATION, key_type, derivation_id + running.to_bytes(4, "big"))
            key = derive_key(key, key_type, data)
    return key, key_type


def working_key(bdk, ksn_hex, usage, key_type):
    key, initial_type = transaction_key(bdk, ksn_hex)
    # A working key is never a stronger AES key than the initial key.
    strength = {"AES-128": 128, "AES-192": 192, "AES-256": 256}
    if key_type in ("AES-192", "AES-256") and strength[key_type] > strength[initial_type]:
        raise Refused("strength")
    _, derivation_id, counter = parse_ksn(ksn_hex)
    data = derivation_data(USAGES[usage], key_type, derivation_id + counter.to_bytes(4, "big"))
    return derive_key(key, key_type, data)


def encode_format1(pin):
    fill = os.urandom(8).hex().upper()
    text = "1" + "%X" % len(pin) + pin
    return bytes.fromhex(text + fill[len(text):16])


def decode_format1(block):
    text = block.hex().upper()
    n = int(text[1], 16)
    if text[0] != "1" or not 4 <= n <= 12 or not text[2:2 + n].isdigit():
        raise Refused("format 1")
    return text[2:2 + n]


def pin_encipher(c):
    key = working_key(bytes.fromhex(c["bdk"]), c["ksn"], "pin", c["key_type"])
    f, pin, pan = c["format"], c["pin"], c["pan"]
    if f == 4:
        return psec.pinblock.encipher_pinblock_iso_4(key, pin, pan)
    clear = {0: lambda: psec.pinblock.encode_pinblock_iso_0(pin, pan),
             1: lambda: encode_format1(pin),
             3: lambda: psec.pinblock.encode_pinblock_iso_3(pin, pan)}[f]()
    return tdes_ecb(key, clear)


def pin_decipher(c):
    key = working_key(bytes.fromhex(c["bdk"]), c["ksn"], "pin", c["key_type"])
    f, block, pan = c["format"], bytes.fromhex(c["block"]), c["pan"]
    if f == 4:
        return psec.pinblock.decipher_pinblock_iso_4(key, block, pan)
    clear = tdes_ecb(key, block, decrypt=True)
    if f == 0:
        return psec.pinblock.decode_pinblock_iso_0(clear, pan)
    if f == 1:
        return decode_format1(clear)
    return psec.pinblock.decode_pinblock_iso_3(clear, pan)


def answer(c):
    op = c["op"]
    bdk = bytes.fromhex(c["bdk"])
    if op == "initial_key":
        return {"key": initial_key(bdk, c["ksn"])[0].hex().upper()}
    if op == "transaction_key":
        return {"key": transaction_key(bdk, c["ksn"])[0].hex().upper()}
    if op == "working_key":
        return {"key": working_key(bdk, c["ksn"], c["usage"], c["key_type"]).hex().upper()}
    if op == "pin_encipher":
        return {"block": pin_encipher(c).hex().upper()}
    if op == "pin_decipher":
        return {"pin": pin_decipher(c)}
    raise RuntimeError("unknown op " + op)


def main():
    for line in sys.stdin:
        case = json.loads(line)
        try:
            out = answer(case)
        except (Refused, ValueError):
            out = {"error": True}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
