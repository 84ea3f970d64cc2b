"""Independent oracle for the differential tests: one JSON case per stdin line, one JSON
answer per stdout line. Uses psec (and, for AES-CMAC/HMAC, the `cryptography` package and
Python's hmac), never cofre's code."""
import hashlib
import hmac
import json
import sys
import warnings

warnings.filterwarnings("ignore")

import psec
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import algorithms


def h(x):
    return bytes.fromhex(x)


def answer(c):
    op = c["op"]
    if op == "cvv":
        return psec.cvv.generate_cvv(h(c["key"]), c["pan"], c["expiry"], c["service_code"])
    if op == "pvv":
        return psec.pin.generate_visa_pvv(h(c["key"]), str(c["pvki"]), c["pin"][:4], c["pan"])
    if op == "ibm_offset":
        return psec.pin.generate_ibm3624_offset(
            h(c["key"]), c["table"], c["pin"], c["pan"], c["start"], c["length"], c["pad"])
    if op == "ibm_pin":
        return psec.pin.generate_ibm3624_pin(
            h(c["key"]), c["table"], c["offset"], c["pan"], c["start"], c["length"], c["pad"])
    if op == "pb_encode":
        f = c["format"]
        if f == 0:
            return psec.pinblock.encode_pinblock_iso_0(c["pin"], c["pan"]).hex().upper()
        if f == 2:
            return psec.pinblock.encode_pinblock_iso_2(c["pin"]).hex().upper()
        if f == 3:
            return psec.pinblock.encode_pinblock_iso_3(c["pin"], c["pan"]).hex().upper()
        if f == 4:
            return psec.pinblock.encipher_pinblock_iso_4(h(c["key"]), c["pin"], c["pan"]).hex().upper()
    if op == "pb_decode":
        f = c["format"]
        b = h(c["block"])
        if f == 0:
            return psec.pinblock.decode_pinblock_iso_0(b, c["pan"])
        if f == 2:
            return psec.pinblock.decode_pinblock_iso_2(b)
        if f == 3:
            return psec.pinblock.decode_pinblock_iso_3(b, c["pan"])
        if f == 4:
            return psec.pinblock.decipher_pinblock_iso_4(h(c["key"]), b, c["pan"])
    if op == "kcv_tdes":
        return psec.des.generate_kcv(h(c["key"]), 3).hex().upper()
    if op == "kcv_aes":
        m = cmac.CMAC(algorithms.AES(h(c["key"])))
        m.update(bytes(16))
        return m.finalize()[:3].hex().upper()
    if op == "retail_mac":
        k = h(c["key"])
        return psec.mac.generate_retail_mac(k[:8], k[8:], h(c["data"]), 1).hex().upper()
    if op == "aes_cmac":
        m = cmac.CMAC(algorithms.AES(h(c["key"])))
        m.update(h(c["data"]))
        return m.finalize().hex().upper()
    if op == "hmac":
        return hmac.new(h(c["key"]), h(c["data"]), hashlib.sha256).hexdigest().upper()
    if op == "tdes_cbc":
        return psec.des.encrypt_tdes_cbc(h(c["key"]), h(c["iv"]), h(c["data"])).hex().upper()
    if op == "aes_cbc":
        return psec.aes.encrypt_aes_cbc(h(c["key"]), h(c["iv"]), h(c["data"])).hex().upper()
    if op == "tdes_ecb":
        return psec.des.encrypt_tdes_ecb(h(c["key"]), h(c["data"])).hex().upper()
    if op == "aes_ecb":
        return psec.aes.encrypt_aes_ecb(h(c["key"]), h(c["data"])).hex().upper()
    if op == "tr31_unwrap":
        header, key = psec.tr31.unwrap(h(c["kbpk"]), c["block"])
        return {"key": key.hex().upper(), "usage": header.key_usage, "algorithm": header.algorithm,
                "mode": header.mode_of_use, "exportability": header.exportability}
    if op == "tr31_wrap":
        return psec.tr31.wrap(h(c["kbpk"]), c["header"], h(c["key"]))
    raise ValueError("unknown op " + op)


for line in sys.stdin:
    case = json.loads(line)
    print(json.dumps(answer(case)), flush=False)
