#!/usr/bin/env python3
"""An independent payShield host-command client, written from the public host-command
documentation (Thales payShield 9000/10K Host Command Reference: message framing, and
the NC, EC, DC, EA, CW, CY, JA, JG, JE, DG and DE command and response layouts), not from
cofre's code. The "PIN encrypted under the LMK" field (LN or LH in the reference) is
opaque here: its length is the one thing taken from cofre's protocol/payshield.md
(50 hex characters), and every value read out of it goes back through the HSM. Standard
library only. Driven by tests/payshield.rs against a live daemon over mutual TLS.

Framing (host command reference, "TCP/IP"): each message is a 2-byte big-endian length
followed by the message; a message is the message header (here 4 characters), the
2-character command code and the fields. The response has the same header, the
response code (the command code with its second character's successor) and a
2-character error code, then the response fields.

Usage: payshield_client.py --host H --port P --ca CA --cert CERT --key KEY name=block...
(key blocks in key-block LMK form, `S...`, for zpk, tpk, pvk and cvk).
Exits non-zero on the first answer that breaks the documentation or the expected value.
"""

import argparse
import socket
import ssl
import struct
import sys

HEADER = 4
LMK_PIN = 50


class Client:
    def __init__(self, sock):
        self.sock = sock
        self.counter = 0

    def _read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise RuntimeError("connection closed")
            buf += chunk
        return buf

    def command(self, code, fields):
        """Sends one command; returns (error code, response fields) after checking the
        framing rules: header echoed, response code = second character + 1."""
        self.counter += 1
        header = "%04d" % self.counter
        message = (header + code + fields).encode("ascii")
        self.sock.sendall(struct.pack(">H", len(message)) + message)
        (length,) = struct.unpack(">H", self._read_exact(2))
        answer = self._read_exact(length).decode("ascii")
        expect(answer[:HEADER] == header, "header echoed", answer)
        response = code[0] + chr(ord(code[1]) + 1)
        expect(answer[HEADER:HEADER + 2] == response, "response code " + response, answer)
        error = answer[HEADER + 2:HEADER + 4]
        expect(len(error) == 2 and error.isalnum(), "two-character error code", answer)
        return error, answer[HEADER + 4:]


CHECKS = [0]


def expect(ok, what, detail):
    CHECKS[0] += 1
    if not ok:
        print("FAILED: %s: %r" % (what, detail))
        sys.exit(1)


def account_number(pan):
    """The 12 rightmost PAN digits excluding the check digit."""
    return pan[-13:-1]


def main():
    p = argparse.ArgumentParser()
    for a in ("--host", "--port", "--ca", "--cert", "--key"):
        p.add_argument(a, required=True)
    p.add_argument("blocks", nargs="+")
    args = p.parse_args()
    keys = dict(b.split("=", 1) for b in args.blocks)
    zpk, tpk, pvk, cvk = (keys["{%s}" % k] for k in ("zpk", "tpk", "pvk", "cvk"))

    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca)
    context.load_cert_chain(args.cert, args.key)
    context.check_hostname = False
    with socket.create_connection((args.host, int(args.port)), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            c = Client(tls)
            pan = "4111111111111111"
            acct = account_number(pan)

            # NC: LMK check value (16) and firmware number (9).
            err, f = c.command("NC", "")
            expect(err == "00" and len(f) == 25, "NC answer", (err, f))

            # EC: ZPK, PVK, PIN block (16H), format code 01, account number (12N),
            # PVKI (1N), PVV (4N). PIN 1234 under the example ZPK, PVV 9464.
            ec = lambda block, pvv: zpk + pvk + block + "01" + acct + "1" + pvv
            err, f = c.command("EC", ec("2A3D408A1977DDE9", "9464"))
            expect((err, f) == ("00", ""), "EC right PIN", (err, f))
            err, _ = c.command("EC", ec("2A3D408A1977DDE9", "9465"))
            expect(err == "01", "EC verification failure", err)
            err, _ = c.command("EC", ec("2A3D408A1977DDE9", "9464"))
            expect(err == "00", "EC right PIN again", err)

            # DC: TPK in the first key field.
            dc = tpk + pvk + "3100E7D6AB527AA1" + "01" + acct + "1" + "9464"
            err, _ = c.command("DC", dc)
            expect(err == "00", "DC right PIN", err)

            # EA: ZPK, PVK, maximum PIN length (2N), PIN block, format code, check
            # length (2N), account number, decimalisation table (16N), PIN validation
            # data (12, N = the account number's last 5 digits), offset (12, F-padded).
            # 3104 is PIN 1234's IBM 3624 offset under the example PVK for validation
            # data 111111111111FFFF (computed separately with a DES implementation).
            ea = lambda offset: (zpk + pvk + "12" + "2A3D408A1977DDE9" + "01" + "04" + acct
                                 + "0123456789012345" + acct[:7] + "N" + "FFFF"
                                 + offset.ljust(12, "F"))
            err, f = c.command("EA", ea("3104"))
            expect((err, f) == ("00", ""), "EA right PIN", (err, f))
            err, _ = c.command("EA", ea("3105"))
            expect(err == "01", "EA verification failure", err)
            err, _ = c.command("EA", ea("3104"))
            expect(err == "00", "EA right PIN again", err)

            # CA: TPK, ZPK, maximum PIN length, PIN block, source and destination
            # format codes, account number -> PIN length, PIN block, format code.
            err, f = c.command("CA", tpk + zpk + "12" + "3100E7D6AB527AA1" + "01" + "01" + acct)
            expect((err, f) == ("00", "04" + "2A3D408A1977DDE9" + "01"), "CA", (err, f))

            # CW: CVK, PAN, ';', expiry YYMM, service code -> CVV (3N).
            err, f = c.command("CW", cvk + pan + ";" + "2812" + "201")
            expect((err, f) == ("00", "812"), "CW CVV", (err, f))
            # CVV2 (service code 000) is a different value, 3 digits.
            err, cvv2 = c.command("CW", cvk + pan + ";2812000")
            expect(err == "00" and len(cvv2) == 3 and cvv2.isdigit(), "CW CVV2", cvv2)
            # CY: CVK, CVV, PAN, ';', expiry, service code.
            err, _ = c.command("CY", cvk + cvv2 + pan + ";2812000")
            expect(err == "00", "CY CVV2", err)
            wrong = "%03d" % ((int(cvv2) + 1) % 1000)
            err, _ = c.command("CY", cvk + wrong + pan + ";2812000")
            expect(err == "01", "CY wrong CVV2", err)

            # Errors documented for any command: 15 (invalid input), 23 (PIN block
            # format), 68 (command disabled).
            err, _ = c.command("CW", cvk + pan + ";28")
            expect(err == "15", "CW short", err)
            err, _ = c.command("EC", zpk + pvk + "2A3D408A1977DDE9" + "99" + acct + "19464")
            expect(err == "23", "EC format code 99", err)
            err, _ = c.command("CI", "")
            expect(err == "68", "CI not offered", err)

            # JA: account number (12N), PIN length (2N, optional, 04-12) -> the PIN
            # under the LMK. JG: ZPK, PIN block format code, account number, LMK PIN ->
            # PIN block (16H). DG: PVK, LMK PIN, account number, PVKI (1N) -> PVV (4N).
            # DE: PVK, LMK PIN, check length (2N), account number, decimalisation
            # table, PIN validation data -> offset (12, F-padded). An issuer's chain:
            # a random PIN, its PVV and offset, its block under the ZPK; EC and EA then
            # verify that block against them.
            acct2 = "222222222222"
            err, lmk_pin = c.command("JA", acct2 + "04")
            expect(err == "00" and len(lmk_pin) == LMK_PIN, "JA answer", (err, lmk_pin))
            err, other = c.command("JA", acct2 + "04")
            expect(err == "00" and other != lmk_pin, "two JA answers differ", other)
            err, pvv = c.command("DG", pvk + lmk_pin + acct2 + "1")
            expect(err == "00" and len(pvv) == 4 and pvv.isdigit(), "DG PVV", (err, pvv))
            validation = acct2[:7] + "N" + "FFFF"
            err, offset = c.command("DE", pvk + lmk_pin + "04" + acct2 + "0123456789012345"
                                    + validation)
            expect(err == "00" and len(offset) == 12 and offset[:4].isdigit()
                   and offset[4:] == "F" * 8, "DE offset", (err, offset))
            err, block = c.command("JG", zpk + "01" + acct2 + lmk_pin)
            expect(err == "00" and len(block) == 16, "JG PIN block", (err, block))
            err, _ = c.command("EC", zpk + pvk + block + "01" + acct2 + "1" + pvv)
            expect(err == "00", "EC of JG's block with DG's PVV", err)
            err, _ = c.command("EA", zpk + pvk + "12" + block + "01" + "04" + acct2
                               + "0123456789012345" + validation + offset)
            expect(err == "00", "EA of JG's block with DE's offset", err)
            # JE: ZPK, PIN block, format code, account number -> LMK PIN; JG of it
            # gives the format 0 block back (format 0 has no random fill).
            err, tour = c.command("JE", zpk + "2A3D408A1977DDE9" + "01" + acct)
            expect(err == "00" and len(tour) == LMK_PIN, "JE answer", (err, tour))
            err, back = c.command("JG", zpk + "01" + acct + tour)
            expect((err, back) == ("00", "2A3D408A1977DDE9"), "JG of JE", (err, back))
            # The LMK PIN of another account does not open (14: error in PIN).
            err, _ = c.command("JG", zpk + "01" + acct + lmk_pin)
            expect(err == "14", "JG of another account's PIN", err)
            err, _ = c.command("NC", "")
            expect(err == "00", "NC after errors", err)
    print("%d checks passed" % CHECKS[0])


if __name__ == "__main__":
    main()
