#!/usr/bin/env python3
"""An independent payShield host-command client, written from the public host-command
documentation (Thales payShield 9000/10K Host Command Reference: message framing, and
the NC, EC, DC, EA, CW and CY command and response layouts), not from cofre's code. Standard
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
            err, _ = c.command("JA", acct + "04")
            expect(err == "68", "JA not offered", err)
            err, _ = c.command("NC", "")
            expect(err == "00", "NC after errors", err)
    print("%d checks passed" % CHECKS[0])


if __name__ == "__main__":
    main()
