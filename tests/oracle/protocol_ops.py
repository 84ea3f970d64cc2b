"""What each operation answers, as protocol/README.md, algorithms.md, keys.md and
dcvv2.md describe it: the operations of the model daemon of protocol_model.py (the
checks before them are there). Never cofre's code.
"""
import re

import psec
import pydukpt

import dcvv2_reference
import dukpt_aes_reference
import ff1_tokens
from protocol_model import (
    AES_PIN_KEY_TYPES, ALG_CODE, CONFIG, HEADER, KINDS, Bad, DaemonBase, cvv, decode_pin_block,
    delivery_kinds, IBM as IBM_NAMES, encode_iso0, ibm_offset, ibm_offset_matches, kcv, mac_of,
    malformed, pvv, refuse,
)


class Daemon(DaemonBase):
    """The model daemon: one method per operation, `op_<name with _ for .>`."""

    def op_health(self, op, f, role):
        return {"server_version": None, "lmk_kcv": "35146C", "uptime": None, "role": role}

    def tokens(self, pan, alphabet):
        return {"token": ff1_tokens.tokenise(self.token_key, pan, alphabet), "token_version": 1,
                "masked_pan": pan[:6] + "*" * (len(pan) - 10) + pan[-4:],
                "lookup_token": ff1_tokens.lookup_token(self.lookup_key, pan)}

    def op_pan_tokenise(self, op, f, role):
        if f.get("alphabet", 0) == 0 and not ff1_tokens.luhn_valid(f["pan"]):
            malformed("pan")
        return self.tokens(f["pan"], f.get("alphabet", 0))

    def op_pan_detokenise(self, op, f, role):
        pan, v = self.card(f)
        return {"pan": pan, "token_version": v}

    def op_pan_generate(self, op, f, role):
        # Random: the answer is checked by property (see `check`).
        return {"token": None, "token_version": 1, "masked_pan": None, "lookup_token": None,
                **({"encrypted": None, "transport_key_version": 1} if "transport_key" in f else {})}

    def pin_of(self, op, f, pan, block_name="pin_block"):
        fmt = f["format"]
        if "ksn" in f:
            return self.dukpt_pin_of(op, f, pan)
        k = self.key(op, "key", f["key"])
        if (fmt == 4) != (k["alg"] == "aes"):
            refuse("wrong_key_usage")
        try:
            return decode_pin_block(fmt, k["alg"], k["key"], f[block_name], pan)
        except Bad:
            refuse("invalid_pin_block")

    def dukpt_pin_of(self, op, f, pan):
        """README.md, "DUKPT input": the checks in its order, then the block deciphered
        under the terminal's PIN key (pydukpt for TDES DUKPT, the X9.24-3 reference of
        this folder for AES DUKPT)."""
        fmt, ksn = f["format"], f["ksn"]
        if fmt == 2:
            malformed("format")
        k = self.key(op, "key", f["key"], ("bdk",))
        tdes = len(ksn) == 10
        if tdes:
            counter, last, most = int.from_bytes(ksn[7:], "big") & 0x1FFFFF, 0x1FF800, 10
        else:
            counter, last, most = int.from_bytes(ksn[8:], "big"), 0xFFFF0000, 16
        if counter == 0:
            refuse("ksn_refused", reason="counter_zero")
        if counter > last:
            refuse("ksn_refused", reason="counter_exhausted")
        if bin(counter).count("1") > most:
            refuse("ksn_refused", reason="counter_one_bits")
        if k["alg"] != ("tdes" if tdes else "aes") or (tdes and len(k["key"]) != 16):
            refuse("wrong_key_usage")
        if tdes:
            current = pydukpt.derive_key(pydukpt.derive_ipek(k["key"], ksn), ksn)
            alg, pin_key = "tdes", pydukpt.pin_key(current)
        else:
            alg = "aes"
            key_type, length = AES_PIN_KEY_TYPES[f.get("pin_key_type", 2)]
            # X9.24-3-2017: a working key is never stronger than the BDK.
            if length > len(k["key"]):
                refuse("wrong_key_usage", reason="pin_key_type_too_strong")
            pin_key = dukpt_aes_reference.working_key(k["key"], ksn.hex().upper(), "pin",
                                                      key_type)
        try:
            return decode_pin_block(fmt, alg, pin_key, f["pin_block"], pan)
        except Bad:
            refuse("invalid_pin_block")

    def verifies(self, op, f, pin, pan):
        pvk = self.key(op, "pvk", f["pvk"])["key"]
        if "pvv" in f:
            return pvv(pvk, f.get("pvki", 1), pin, pan) == f["pvv"]
        return ibm_offset_matches(pvk, pin, pan, f["offset"])

    def op_pin_verify(self, op, f, role):
        pan, tv = self.card(f)
        if self.pin_tries.get(pan, 0) >= CONFIG["lockout"]["pin_limit"]:
            refuse("pin_locked")
        pin = self.pin_of(op, f, pan)
        if not self.verifies(op, f, pin, pan):
            self.pin_tries[pan] = self.pin_tries.get(pan, 0) + 1
            refuse("verification_failed")
        self.pin_tries[pan] = 0
        return {"key_version": 1, "pvk_version": 1, **({"token_version": tv} if tv else {})}

    def op_pin_change(self, op, f, role):
        pan, tv = self.card(f)
        old = self.pin_of(op, f, pan)
        new = self.pin_of(op, f, pan, "new_pin_block")
        if not self.verifies(op, f, old, pan):
            self.pin_tries[pan] = self.pin_tries.get(pan, 0) + 1
            refuse("verification_failed")
        policy = CONFIG.get("pin_policy", {})
        if new == old:
            refuse("weak_pin", reason="current")
        if policy.get("repeated_digits", True) and len(set(new)) == 1:
            refuse("weak_pin", reason="repeated")
        steps = {(int(b) - int(a)) % 10 for a, b in zip(new, new[1:])}
        if policy.get("sequences", True) and steps in ({1}, {9}):
            refuse("weak_pin", reason="sequence")
        if new in policy.get("excluded", []):
            refuse("weak_pin", reason="excluded")
        return {"pvv": pvv(self.keys[f["pvk"]]["key"], f.get("pvki", 1), new, pan),
                "pvk_version": 1, "pin_blob": None, "key_version": 1}

    def op_pin_translate(self, op, f, role):
        # README.md, pin.translate: a pin_blob stands for key, ksn, format and pin_block
        # (it comes alone); no dest_key and no dest_format is the LMK form; both count
        # as format 4 for the rules.
        if "pin_blob" in f:
            for name in ("key", "ksn", "format", "pin_block"):
                if name in f:
                    malformed(name)
        if "dest_key" not in f and ("dest_format" in f or "pin_blob" in f):
            malformed("dest_key")
        if "dest_key" in f and "dest_format" not in f:
            malformed("dest_format")
        src = 4 if "pin_blob" in f else f["format"]
        dst = f.get("dest_format", 4)
        if 2 in (src, dst) or (dst == 1 and src != 1):
            refuse("translation_not_allowed")
        pan, tv = self.card(f)
        if "pin_blob" in f:
            pin = self.open_blob(f["pin_blob"], pan)
            versions = {}
        else:
            pin = self.pin_of(op, f, pan)
            versions = {"key_version": 1}
        if "dest_key" not in f:
            self.expect_blob = (pin, pan)
            return {"pin_blob": None, "pin_length": len(pin), **versions}
        dest = self.key(op, "dest_key", f["dest_key"])
        assert dst == 0 and dest["alg"] == "tdes", "vectors translate into format 0 only"
        block = encode_iso0(dest["key"], pin, pan) if pin else None
        return {"pin_block": block, "pin_length": len(pin) if pin else None, **versions,
                "dest_key_version": 1}

    def open_blob(self, blob, pan):
        """The PIN of a blob this model saw sealed (None for one it did not); a blob
        sealed for another card is invalid_blob."""
        known = self.blobs.get(bytes(blob))
        if known and known[1] != pan:
            refuse("invalid_blob")
        return known[0] if known else None

    def op_pin_random(self, op, f, role):
        if not 4 <= f.get("pin_length", 4) <= 12:
            malformed("pin_length")
        pan, tv = self.card(f)
        return {"pin_blob": None, **({"token_version": tv} if tv else {})}

    def op_pin_reference(self, op, f, role):
        pan, tv = self.card(f)
        pvk = self.key(op, "pvk", f["pvk"])["key"]
        pin = self.open_blob(f["pin_blob"], pan)
        if f.get("method", 0) == 1:
            assert not any(n in f for n in IBM_NAMES), "vectors use the default parameters"
            # algorithms.md, "IBM 3624": validation data = the PAN's 12 digits before the
            # check digit (the default), then F; table 0123456789012345.
            return {"offset": ibm_offset(pvk, pin, pan) if pin else None, "pvk_version": 1}
        return {"pvv": pvv(pvk, f.get("pvki", 1), pin, pan) if pin else None, "pvk_version": 1}

    def op_pin_generate(self, op, f, role):
        return {"pvv": None, "pvk_version": 1, "pin_blob": None}

    def op_pin_rebind(self, op, f, role):
        return {"pvv": None, "pvk_version": 1, "pin_blob": None}

    def op_pin_deliver(self, op, f, role):
        pan, tv = self.card(f)
        self.key(op, "delivery_key", f["delivery_key"], delivery_kinds())
        return {"delivery_block": None, "transport_key_version": 1}

    def op_pin_attempts(self, op, f, role):
        pan, tv = self.card(f)
        tries = self.pin_tries.get(pan, 0)
        return {"attempts": tries, "limit": CONFIG["lockout"]["pin_limit"], "locked": False,
                "last_failure": None if tries else 0}

    def op_pin_attempts_reset(self, op, f, role):
        pan, tv = self.card(f)
        self.pin_tries[pan] = 0
        return {"attempts": 0, "limit": CONFIG["lockout"]["pin_limit"], "locked": False,
                "last_failure": 0}

    def op_pin_guard_reset(self, op, f, role):
        return {}

    def op_cvv_generate(self, op, f, role):
        pan, tv = self.card(f)
        k = self.key(op, "key", f["key"])["key"]
        e, sc = f["expiry"], f["service_code"]
        return {"cvv": cvv(k, pan, e, sc), "cvv2": cvv(k, pan, e, "000"),
                "icvv": cvv(k, pan, e, "999"), "key_version": 1,
                **({"token_version": tv} if tv else {})}

    def op_cvv_verify(self, op, f, role):
        pan, tv = self.card(f)
        if f["service_code"] == "000" and self.dcvv2.get(pan, (False, None))[0]:
            refuse("verification_failed", reason="dcvv2_active")
        k = self.key(op, "key", f["key"])["key"]
        if cvv(k, pan, f["expiry"], f["service_code"]) != f["cvv"]:
            refuse("verification_failed")
        return {"key_version": 1}

    def op_card_codes_export(self, op, f, role):
        pan, tv = self.card(f)
        self.key(op, "key", f["key"])
        self.key(op, "transport_key", f["transport_key"])
        return {"encrypted": None, "key_version": 1, "transport_key_version": 1}

    def op_dcvv2_generate(self, op, f, role):
        pan, tv = self.card(f)
        k = self.key(op, "key", f["key"])
        code = dcvv2_reference.derive(k["key"], pan, f["expiry"], f["counter"])[4]
        if "transport_key" in f:
            self.key(op, "transport_key", f["transport_key"])
            self.expect_code_block = (self.keys[f["transport_key"]]["key"], code)
            return {"encrypted": None, "moving_factor": f["counter"], "key_version": 1,
                    "transport_key_version": 1}
        return {"dcvv2": code, "moving_factor": f["counter"], "key_version": 1}

    def op_dcvv2_verify(self, op, f, role):
        pan, tv = self.card(f)
        k = self.key(op, "key", f["key"])
        window = f.get("window", 1)
        step = dcvv2_reference.verify_window(k["key"], pan, f["expiry"], f["counter"], window,
                                             window, f["dcvv2"])
        if step is None:
            refuse("verification_failed")
        enabled, last = self.dcvv2.get(pan, (False, None))
        if last is not None and step <= last:
            refuse("replayed")
        self.dcvv2[pan] = (enabled, step)
        return {"moving_factor": step, "key_version": 1}

    def op_dcvv2_enable(self, op, f, role):
        pan, _ = self.card(f)
        self.dcvv2[pan] = (True, self.dcvv2.get(pan, (False, None))[1])
        return {}

    def op_dcvv2_disable(self, op, f, role):
        pan, _ = self.card(f)
        self.dcvv2[pan] = (False, self.dcvv2.get(pan, (False, None))[1])
        return {}

    def op_dcvv2_state(self, op, f, role):
        pan, _ = self.card(f)
        return {"dcvv2_enabled": self.dcvv2.get(pan, (False, None))[0], "attempts": 0,
                "limit": CONFIG["lockout"]["dcvv2_limit"], "locked": False, "last_failure": 0}

    def op_mac_generate(self, op, f, role):
        k = self.key(op, "key", f["key"])
        return {"mac": mac_of(k["alg"], k["key"], f["data"]), "key_version": 1}

    def op_mac_verify(self, op, f, role):
        k = self.key(op, "key", f["key"])
        full = mac_of(k["alg"], k["key"], f["data"])
        if not (k["min"] or len(full)) <= len(f["mac"]) <= len(full):
            malformed("mac")
        if full[:len(f["mac"])] != f["mac"]:
            refuse("verification_failed")
        return {"key_version": 1}

    # Key administration (keys.md).
    def new_id(self, f):
        ident = f["key"]
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", ident):
            malformed("key")
        return ident

    def op_key_list(self, op, f, role):
        return {"listing": None}

    def op_key_generate(self, op, f, role):
        ident = self.new_id(f)
        kind = f.get("kind")
        if kind is None or kind not in KINDS:
            malformed("kind")
        alg = f.get("algorithm", next(iter(KINDS[kind])))
        if alg not in KINDS[kind]:
            malformed("algorithm")
        if f.get("key_length", KINDS[kind][alg][0]) not in KINDS[kind][alg]:
            malformed("key_length")
        if ident in self.keys:
            malformed("key", "key_exists")
        self.keys[ident] = {"kind": kind, "alg": alg, "key": None, "min": None}
        return {"kcv": None, "key_version": 1}

    def op_key_rotate(self, op, f, role):
        return {"kcv": None, "key_version": 2}

    def op_key_retire(self, op, f, role):
        return {"key_version": f["key_version"]}

    def op_key_import(self, op, f, role):
        ident = self.new_id(f)
        kek = self.key(op, "kek", f["kek"])
        header, key = psec.tr31.unwrap(kek["key"], f["key_block"])
        usage, alg, mode = header.key_usage, header.algorithm, header.mode_of_use
        kind = f.get("kind")
        if kind is None:
            kind = {("P0", "E"): "pin-delivery", ("D0", "B"): "token",
                    ("D0", "E"): "transport"}.get((usage, mode))
            kind = kind or {"P0": "zpk", "V0": "pvk", "V1": "pvk", "V2": "pvk", "C0": "cvk",
                            "10": "dcvv2", "11": "lookup", "M3": "mac", "M6": "mac",
                            "M7": "mac", "K0": "kek", "K1": "kek", "B0": "bdk"}.get(usage)
        usages, want_mode = HEADER[kind]
        if isinstance(usages, dict):
            usages = usages.get(alg, [])
        if usage not in usages or mode != want_mode or ALG_CODE[alg] not in KINDS[kind]:
            refuse("key_block_refused")
        if ident in self.keys:
            malformed("key", "key_exists")
        self.keys[ident] = {"kind": kind, "alg": ALG_CODE[alg], "key": key,
                            "min": f.get("mac_min_length")}
        return {"kcv": kcv(ALG_CODE[alg], key), "key_version": 1}

    def op_key_export(self, op, f, role):
        k = self.key(op, "key", f["key"])
        kek = self.key(op, "kek", f["kek"])
        usages, mode = HEADER[k["kind"]]
        code = {v: c for c, v in ALG_CODE.items()}[k["alg"]]
        usage = usages[code][0] if isinstance(usages, dict) else usages[0]
        version = "B" if kek["alg"] == "tdes" else "D"
        self.expect_export = (kek["key"], version + "0000" + usage + code + mode + "00N0000",
                              k["key"])
        return {"key_block": None, "kcv": k["kcv"], "key_version": 1}
