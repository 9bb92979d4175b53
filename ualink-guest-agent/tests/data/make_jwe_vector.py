#!/usr/bin/env python3
"""Generates jwe_ecdh_es_a256kw.json: a JWE (ECDH-ES+A256KW, A256GCM) built with pyca/cryptography
(an implementation independent of the agent's p256 + aes-kw + ring stack), for the agent's
known-answer test. Run once; the output is committed. Keys are fixed test keys, not secrets."""
import base64, json, os
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def b64u(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def lp(b): return len(b).to_bytes(4, "big") + b

# Recipient (the agent's tee-pubkey): a fixed scalar.
d = int("0c2f3e1a5b7d9f11223344556677889900aabbccddeeff0011223344556677ab", 16)
recipient = ec.derive_private_key(d, ec.SECP256R1())
eph = ec.generate_private_key(ec.SECP256R1())
epn = eph.public_key().public_numbers()
z = eph.exchange(ec.ECDH(), recipient.public_key())
apu, apv = b"", b""
other = lp(b"ECDH-ES+A256KW") + lp(apu) + lp(apv) + (256).to_bytes(4, "big")
kek = ConcatKDFHash(hashes.SHA256(), 32, otherinfo=other).derive(z)
cek = os.urandom(32)
protected = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM",
             "epk": {"kty": "EC", "crv": "P-256", "x": b64u(epn.x.to_bytes(32, "big")),
                     "y": b64u(epn.y.to_bytes(32, "big"))}}
prot_b64 = b64u(json.dumps(protected, separators=(",", ":")).encode())
iv = os.urandom(12)
plaintext = b"tenant-a vPod secret: 0123456789abcdef"
ct = AESGCM(cek).encrypt(iv, plaintext, prot_b64.encode())
jwe = {"protected": prot_b64, "encrypted_key": b64u(aes_key_wrap(kek, cek)),
       "iv": b64u(iv), "ciphertext": b64u(ct[:-16]), "tag": b64u(ct[-16:])}
print(json.dumps({"recipient_d": format(d, "064x"), "plaintext": plaintext.decode(), "jwe": jwe}, indent=1))
