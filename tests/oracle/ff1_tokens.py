"""PAN tokens and lookup tokens as protocol/README.md ("PAN tokens") specifies them,
written from that text and from NIST SP 800-38G (FF1, Algorithm 7 and 8) with AES from
the `cryptography` package only: never cofre's code.

Run alone, it checks FF1 against the NIST samples (FF1samples.pdf, samples 1-9) and
exits non-zero on a mismatch. As an oracle it reads one JSON case per stdin line and
writes one JSON answer per stdout line:
  {"op": "tokenise", "key": hex, "pan": digits, "alphabet": 0|1} -> {"token": str} or {"error": str}
  {"op": "detokenise", "key": hex, "token": str, "alphabet": 0|1} -> {"pan": str} or {"error": str}
  {"op": "lookup", "key": hex, "pan": digits} -> {"lookup": 64 hex}
"""
import hashlib
import hmac
import json
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _aes_ecb(key, block):
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def _prf(key, data):
    """SP 800-38G PRF: the last block of AES-CBC-MAC with a zero IV."""
    y = bytes(16)
    for i in range(0, len(data), 16):
        y = _aes_ecb(key, bytes(a ^ b for a, b in zip(y, data[i:i + 16])))
    return y


def _num(numerals, radix):
    n = 0
    for x in numerals:
        n = n * radix + x
    return n


def _str(n, radix, m):
    out = [0] * m
    for i in range(m - 1, -1, -1):
        out[i] = n % radix
        n //= radix
    return out


def _rounds(key, tweak, radix, n):
    u, v = n // 2, n - n // 2
    # b = ceil(ceil(v * log2(radix)) / 8), computed exactly: radix^v needs k bits.
    k = (radix ** v - 1).bit_length()
    b = (k + 7) // 8
    d = 4 * ((b + 3) // 4) + 4
    t = len(tweak)
    p = bytes([1, 2, 1]) + radix.to_bytes(3, "big") + bytes([10, u % 256]) \
        + n.to_bytes(4, "big") + t.to_bytes(4, "big")

    def f(i, half):
        q = tweak + bytes((-t - b - 1) % 16) + bytes([i]) + _num(half, radix).to_bytes(b, "big")
        r = _prf(key, p + q)
        s = r
        j = 1
        while len(s) < d:
            s += _aes_ecb(key, bytes(x ^ y for x, y in zip(r, j.to_bytes(16, "big"))))
            j += 1
        return int.from_bytes(s[:d], "big")

    return u, v, f


def ff1_encrypt(key, tweak, radix, x):
    n = len(x)
    u, v, f = _rounds(key, tweak, radix, n)
    a, b = list(x[:u]), list(x[u:])
    for i in range(10):
        m = u if i % 2 == 0 else v
        c = (_num(a, radix) + f(i, b)) % (radix ** m)
        a, b = b, _str(c, radix, m)
    return a + b


def ff1_decrypt(key, tweak, radix, x):
    n = len(x)
    u, v, f = _rounds(key, tweak, radix, n)
    a, b = list(x[:u]), list(x[u:])
    for i in range(9, -1, -1):
        m = u if i % 2 == 0 else v
        c = (_num(b, radix) - f(i, a)) % (radix ** m)
        b, a = a, _str(c, radix, m)
    return a + b


def luhn_valid(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def kept_lead(length, alphabet):
    """Leading digits a token keeps: 6, or fewer so that the middle keeps FF1's 10^6
    minimum domain (6 decimal digits, 4 base-36 characters)."""
    if not 12 <= length <= 19:
        raise ValueError("length")
    return min(6, length - 4 - (6 if alphabet == 0 else 4))


def tokenise(key, pan, alphabet):
    if len(pan) < 12 or len(pan) > 19 or not pan.isdigit():
        raise ValueError("pan")
    lead_len = kept_lead(len(pan), alphabet)
    lead, middle, last4 = pan[:lead_len], pan[lead_len:-4], pan[-4:]
    tweak = (lead + last4).encode()
    radix = 10 if alphabet == 0 else 36
    mid = [int(c) for c in middle]
    if alphabet == 0:
        if not luhn_valid(pan):
            raise ValueError("luhn")
        mid[-1] = (mid[-1] + 1) % 10

        def ok(m):
            return not luhn_valid(lead + "".join(DIGITS[x] for x in m) + last4)
    else:
        mid[0] += 10

        def ok(m):
            return any(x >= 10 for x in m)
    while True:
        mid = ff1_encrypt(key, tweak, radix, mid)
        if ok(mid):
            return lead + "".join(DIGITS[x] for x in mid) + last4


def detokenise(key, token, alphabet):
    token = token.lower()
    lead_len = kept_lead(len(token), alphabet)
    lead, middle, last4 = token[:lead_len], token[lead_len:-4], token[-4:]
    if not (lead + last4).isdigit():
        raise ValueError("frame")
    radix = 10 if alphabet == 0 else 36
    mid = [DIGITS.index(c) for c in middle]
    if any(x >= radix for x in mid):
        raise ValueError("alphabet")
    tweak = (lead + last4).encode()

    def ok(m):
        if alphabet == 0:
            return not luhn_valid(lead + "".join(DIGITS[x] for x in m) + last4)
        return any(x >= 10 for x in m)
    if not ok(mid):
        raise ValueError("not a token")
    while True:
        mid = ff1_decrypt(key, tweak, radix, mid)
        if ok(mid):
            break
    if alphabet == 0:
        mid[-1] = (mid[-1] + 9) % 10
    else:
        if not (10 <= mid[0] < 20 and all(x < 10 for x in mid[1:])):
            raise ValueError("not a token")
        mid[0] -= 10
    pan = lead + "".join(str(x) for x in mid) + last4
    if alphabet == 0 and not luhn_valid(pan):
        raise ValueError("not a token")
    return pan


def lookup_token(key, pan):
    return hmac.new(key, b"cofre/lookup/v1:" + pan.encode(), hashlib.sha256).hexdigest()


NIST = [
    ("2B7E151628AED2A6ABF7158809CF4F3C", 10, "", "0123456789", "2433477484"),
    ("2B7E151628AED2A6ABF7158809CF4F3C", 10, "39383736353433323130", "0123456789", "6124200773"),
    ("2B7E151628AED2A6ABF7158809CF4F3C", 36, "3737373770717273373737", "0123456789abcdefghi",
     "a9tv40mll9kdu509eum"),
    ("2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F", 10, "", "0123456789", "2830668132"),
    ("2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F", 10, "39383736353433323130",
     "0123456789", "2496655549"),
    ("2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F", 36, "3737373770717273373737",
     "0123456789abcdefghi", "xbj3kv35jrawxv32ysr"),
    ("2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F7F036D6F04FC6A94", 10, "",
     "0123456789", "6657667009"),
    ("2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F7F036D6F04FC6A94", 10,
     "39383736353433323130", "0123456789", "1001623463"),
    ("2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F7F036D6F04FC6A94", 36,
     "3737373770717273373737", "0123456789abcdefghi", "xs8a0azh2avyalyzuwd"),
]


def self_test():
    """FF1 against NIST SP 800-38G's published samples 1-9."""
    for i, (key, radix, tweak, pt, ct) in enumerate(NIST, 1):
        k, t = bytes.fromhex(key), bytes.fromhex(tweak)
        x = [DIGITS.index(c) for c in pt]
        got = "".join(DIGITS[n] for n in ff1_encrypt(k, t, radix, x))
        if got != ct:
            raise SystemExit("NIST FF1 sample %d: %s != %s" % (i, got, ct))
        back = "".join(DIGITS[n] for n in ff1_decrypt(k, t, radix, [DIGITS.index(c) for c in ct]))
        if back != pt:
            raise SystemExit("NIST FF1 sample %d does not decrypt" % i)


def answer(c):
    key = bytes.fromhex(c["key"])
    try:
        if c["op"] == "tokenise":
            return {"token": tokenise(key, c["pan"], c["alphabet"])}
        if c["op"] == "detokenise":
            return {"pan": detokenise(key, c["token"], c["alphabet"])}
        if c["op"] == "lookup":
            return {"lookup": lookup_token(key, c["pan"])}
    except ValueError as e:
        return {"error": str(e)}
    raise SystemExit("unknown op " + c["op"])


if __name__ == "__main__":
    self_test()
    if "--self-test" in sys.argv:
        print("FF1: NIST samples 1-9 agree")
        sys.exit(0)
    for line in sys.stdin:
        print(json.dumps(answer(json.loads(line))), flush=False)
