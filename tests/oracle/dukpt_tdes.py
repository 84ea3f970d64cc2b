"""Independent oracle for TDES DUKPT (ANSI X9.24-1:2009): pydukpt for the keys and
format 0 PIN blocks, psec for format 3, `cryptography` for TDES where pydukpt does not
encipher the block itself. Never imports or runs cofre.

One JSON case per stdin line, one JSON answer per stdout line:
  {"op": "keys", "bdk", "ksn"}
      -> {"ipek", "key", "pin", "mac_request", "mac_response", "data_request",
          "data_response"}
  {"op": "pin_encipher", "bdk", "ksn", "format", "pin", "pan"} -> {"block"}
  {"op": "pin_decipher", "bdk", "ksn", "format", "block", "pan"} -> {"pin"} | {"error": true}
Hex is upper case.
"""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")

import psec
import pydukpt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def hexu(b):
    return b.hex().upper()


def transaction_key(c):
    bdk, ksn = bytes.fromhex(c["bdk"]), bytes.fromhex(c["ksn"])
    ipek = pydukpt.derive_ipek(bdk, ksn)
    return ipek, pydukpt.derive_key(ipek, ksn)


def tdes_ecb(key, data, decrypt=False):
    c = Cipher(algorithms.TripleDES(key), modes.ECB())
    op = c.decryptor() if decrypt else c.encryptor()
    return op.update(data) + op.finalize()


def encode_format1(pin):
    # ISO 9564-1 format 1: control 1, length, PIN, then transaction/random fill.
    text = "1" + "%X" % len(pin) + pin
    return bytes.fromhex(text + os.urandom(8).hex().upper()[len(text):16])


def decode_format1(block):
    text = hexu(block)
    n = int(text[1], 16)
    if text[0] != "1" or not 4 <= n <= 12 or not text[2:2 + n].isdigit():
        raise ValueError("not a format 1 block")
    return text[2:2 + n]


def answer(c):
    op = c["op"]
    if op == "keys":
        ipek, key = transaction_key(c)
        return {
            "ipek": hexu(ipek),
            "key": hexu(key),
            "pin": hexu(pydukpt.pin_key(key)),
            "mac_request": hexu(pydukpt.mac_request_key(key)),
            "mac_response": hexu(pydukpt.mac_response_key(key)),
            "data_request": hexu(pydukpt.data_request_key(key)),
            "data_response": hexu(pydukpt.data_response_key(key)),
        }
    _, key = transaction_key(c)
    f, pan = c["format"], c["pan"]
    if op == "pin_encipher":
        pin = c["pin"]
        if f == 0:
            return {"block": hexu(pydukpt.encrypt_pin(key, pin, pan))}
        clear = encode_format1(pin) if f == 1 else psec.pinblock.encode_pinblock_iso_3(pin, pan)
        return {"block": hexu(tdes_ecb(pydukpt.pin_key(key), clear))}
    if op == "pin_decipher":
        block = bytes.fromhex(c["block"])
        if f == 0:
            return {"pin": pydukpt.decrypt_pin(key, block, pan)}
        clear = tdes_ecb(pydukpt.pin_key(key), block, decrypt=True)
        if f == 1:
            return {"pin": decode_format1(clear)}
        return {"pin": psec.pinblock.decode_pinblock_iso_3(clear, pan)}
    raise RuntimeError("unknown op " + op)


def main():
    for line in sys.stdin:
        case = json.loads(line)
        try:
            out = answer(case)
        except ValueError:
            out = {"error": True}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
