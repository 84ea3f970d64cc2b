#!/usr/bin/env bash
# Rebuilds keys-example/ from the fixed, published clear values below. INSECURE BY DESIGN:
# every value here is public so that people and tests can check results by hand.
# Usage: keys-example/make.sh [path-to-cofre-binary]
set -euo pipefail
cd "$(dirname "$0")"
cofre="${1:-../target/debug/cofre}"

rm -rf lmk clear pki keys.json audit.log
mkdir -p lmk clear

# The LMK: two fixed components (their XOR is the example LMK).
printf '# cofre EXAMPLE LMK component 1 of 2 (INSECURE, published)\ncomponent = %s\n' \
    0101010101010101010101010101010101010101010101010101010101010101 > lmk/component-1.txt
printf '# cofre EXAMPLE LMK component 2 of 2 (INSECURE, published)\ncomponent = %s\n' \
    23456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF01 > lmk/component-2.txt
lmk=(--lmk-component lmk/component-1.txt --lmk-component lmk/component-2.txt)
store=(--store keys.json "${lmk[@]}" --operator keys-example)

"$cofre" keys init "${store[@]}"

# id kind algorithm clear-key exportable
while read -r id kind alg key exp; do
    [ -z "$id" ] && continue
    printf '# EXAMPLE %s (%s %s), INSECURE\ncomponent = %s\n' "$id" "$kind" "$alg" "$key" > "clear/$id.txt"
    "$cofre" keys import "${store[@]}" --id "$id" --kind "$kind" --algorithm "$alg" \
        --component-file "clear/$id.txt" --exportable "$exp"
done <<'KEYS'
zpk.example           zpk       tdes 0123456789ABCDEFFEDCBA9876543210 true
zpk.example.aes       zpk       aes  00112233445566778899AABBCCDDEEFF true
tpk.example           tpk       tdes 89E88CF7931444F334BD7547FC3F380C true
tpk.example.aes       tpk       aes  000102030405060708090A0B0C0D0E0F true
pvk.example           pvk       tdes 0123456789ABCDEFFEDCBA9876543210 true
cvk.example           cvk       tdes 0123456789ABCDEFFEDCBA9876543210 true
dcvv2.example         dcvv2     hmac 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F false
token.example         token     aes  2B7E151628AED2A6ABF7158809CF4F3C false
lookup.example        lookup    hmac 4C4F4F4B55502D4B45592D4558414D504C452D494E5345435552452D2D2D2D21 false
mac.example.retail    mac       tdes 0123456789ABCDEFFEDCBA9876543210 true
mac.example.cmac      mac       aes  2B7E151628AED2A6ABF7158809CF4F3C true
mac.example.hmac      mac       hmac 4A6566654A6566654A6566654A6566654A6566654A6566654A6566654A656665 true
kek.example           kek       aes  88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6 false
kek.example.tdes      kek       tdes 89E88CF7931444F334BD7547FC3F380C false
transport.example     transport tdes 11111111111111112222222222222222 true
transport.example.aes transport aes  33333333333333334444444444444444 true
pin-delivery.example  pin-delivery tdes 5B5B5B5B5B5B5B5B6D6D6D6D6D6D6D6D true
KEYS

"$cofre" keys list "${store[@]}"
"$cofre" keys dev-pki --out pki --client atm-switch-1 --client issuing-host-1 \
    --client facade-1 --client security-officer-1 --client no-role-1
