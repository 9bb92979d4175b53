#!/usr/bin/env python3
"""Regenerates the checked-in seed corpora fuzz/corpus/<target>/ deterministically.

Sources (real bytes, see ualink-spdm/tests/data/README.md): the libspdm/spdm-emu captures
*.transcript.full.txt (every SPDM message, secured records as ciphertext) and
*.vdm_plaintext.txt (the in-session IDE_KM / TDISP VENDOR_DEFINED messages in plaintext), plus a
few hand-built messages for codes the captures do not contain (HEARTBEAT, KEY_UPDATE,
END_SESSION, ERROR, RESPOND_IF_READY) and op sequences for the state-machine harnesses. The input
layouts are documented at the top of each fuzz_targets/<target>.rs.

Also seeds the ualink-attest, guest-agent KBS and kdrv grant targets from ualink-attest/tests/data
and ualink-kdrv/tests/data.

Usage: python3 fuzz/seeds.py   (rewrites every fuzz/corpus/<target>/ directory it generates)
"""

import hashlib
import os
import re
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "ualink-spdm", "tests", "data")
CORPUS = os.path.join(HERE, "corpus")

CAPTURES = {
    # name: (hash_len, sig_len, req_sig_len, dhe_len)
    "v13_p384_session": (48, 96, 96, 96),
    "v12_p256_nosession": (32, 64, 0, 64),
    "tsm_like_v12_p256_pcidoe": (32, 64, 0, 64),
}

HASH_IDX = {32: 0, 48: 1, 64: 2}
SIG_IDX = {64: 0, 96: 1, 132: 2}
OPT_IDX = {0: 0, 64: 1, 96: 2, 132: 3}


def read_entries(path):
    """(header line, bytes) pairs of a transcript / vdm file."""
    out = []
    head = None
    with open(path) as f:
        for line in f:
            s = line.strip()
            if s.startswith("#"):
                head = s
            elif head is not None and re.fullmatch(r"[0-9a-fA-F]+", s):
                out.append((head, bytes.fromhex(s)))
                head = None
    return out


def ctx_bytes(version13, hash_len, sig_len, req_sig, dhe, in_clear, mk, mk_req, summary, meas_sig):
    b0 = (1 if version13 else 0) | HASH_IDX[hash_len] << 1 | SIG_IDX[sig_len] << 3
    b0 |= (0x40 if in_clear else 0) | (0x80 if mk else 0)
    b1 = OPT_IDX[req_sig] | OPT_IDX[dhe] << 3 | (0x40 if mk_req else 0) | (0x80 if summary else 0)
    b2 = 1 if meas_sig else 0
    return bytes([b0, b1, b2])


FAMILY = {
    "spdm_msg_vca": {0x84, 0x04, 0xE1, 0x61, 0xE3, 0x63},
    "spdm_msg_cert": {0x81, 0x01, 0x82, 0x02, 0x83, 0x03},
    "spdm_msg_meas": {0xE0, 0x60},
    "spdm_msg_session": {0xE4, 0x64, 0xE5, 0x65, 0xE6, 0x66, 0xE7, 0x67, 0xE8, 0x68, 0xE9, 0x69, 0xEC, 0x6C},
    "spdm_msg_misc": {0x7F, 0xFE, 0x7E, 0xEA, 0x6A, 0xEB, 0x6B, 0xFF},
}

seeds = {}  # target -> {name: bytes}


def add(target, label, data):
    h = hashlib.sha1(data).hexdigest()[:12]
    seeds.setdefault(target, {})["%s-%s" % (label, h)] = data


def chunk(b):
    b = b[:0xFFFF]
    return struct.pack("<H", len(b)) + b


def spdm_codecs():
    """Every plain SPDM message of every capture, with the context it was sent under."""
    for name, (hl, sl, rsl, dl) in CAPTURES.items():
        entries = read_entries(os.path.join(DATA, name + ".transcript.full.txt"))
        req_flags = rsp_flags = 0
        mk = False
        summary = meas_sig = False
        for head, m in entries:
            if " SPDM v" not in head or len(m) < 4:
                continue
            ver, code, p1, p2 = m[0], m[1], m[2], m[3]
            if code == 0xE1 and len(m) >= 12:
                req_flags = struct.unpack_from("<I", m, 8)[0]
            if code == 0x61 and len(m) >= 12:
                rsp_flags = struct.unpack_from("<I", m, 8)[0]
            if code == 0x63 and len(m) >= 8:
                mk = ver >= 0x13 and bool(m[7] & 0x10)
            if code == 0x83:
                summary = p2 != 0
            if code == 0xE4:
                summary = p1 != 0
            if code == 0xE0:
                meas_sig = bool(p1 & 1)
            in_clear = bool(req_flags & rsp_flags & (1 << 15))
            mkc = (req_flags >> 26) & 3
            mk_req = ver >= 0x13 and (mkc == 1 or (mkc == 2 and mk))
            c = ctx_bytes(ver >= 0x13, hl, sl, rsl, dl, in_clear, mk, mk_req, summary, meas_sig)
            label = re.search(r"SPDM v[0-9.]+ ([A-Z_]+)", head).group(1).lower()
            for target, codes in FAMILY.items():
                if code in codes:
                    add(target, "%s-%s" % (name.split("_")[0], label), c + m)

    # Codes the captures lack (SPDM 1.3 / 1.2 headers, built by hand from DSP0274).
    c13 = ctx_bytes(True, 48, 96, 96, 96, False, False, False, False, False)
    c12 = ctx_bytes(False, 32, 64, 0, 64, False, False, False, False, False)
    for c, v in ((c13, 0x13), (c12, 0x12)):
        for code, p1, p2 in ((0xE8, 0, 0), (0x68, 0, 0), (0xE9, 1, 7), (0x69, 1, 7), (0xE9, 3, 9),
                             (0xEC, 1, 0), (0x6C, 0, 0), (0xE7, 0, 0)):
            add("spdm_msg_session", "built-%02x" % code, c + bytes([v, code, p1, p2]))
        add("spdm_msg_misc", "built-error-busy", c + bytes([v, 0x7F, 0x03, 0x00]))
        add("spdm_msg_misc", "built-error-rnr", c + bytes([v, 0x7F, 0x42, 0x00, 0x0C, 0xE0, 0x05, 0x02]))
        add("spdm_msg_misc", "built-respond-if-ready", c + bytes([v, 0xFF, 0xE0, 0x05]))
    # PSK_FINISH with an H-byte RequesterVerifyData.
    add("spdm_msg_session", "built-psk-finish", c13 + bytes([0x13, 0xE7, 0, 0]) + bytes(48))


def vdm(name):
    """(is_request, protocol label, full SPDM VENDOR_DEFINED message, payload from ProtocolID)."""
    out = []
    for head, m in read_entries(os.path.join(DATA, name + ".vdm_plaintext.txt")):
        if len(m) < 11:
            continue
        vid_len = m[6]
        off = 7 + vid_len
        if len(m) < off + 2:
            continue
        plen = struct.unpack_from("<H", m, off)[0]
        payload = m[off + 2: off + 2 + plen]
        proto = "tdisp" if " TDISP " in head else ("idekm" if " IDE_KM " in head else "other")
        out.append((" REQ " in head, proto, m, payload))
    return out


def vendor_and_tdisp():
    c12 = ctx_bytes(False, 32, 64, 0, 64, False, False, False, False, False)
    msgs = vdm("tsm_like_v12_p256_pcidoe")
    seen = set()
    for is_req, proto, m, payload in msgs:
        key = (proto, m[:40])
        if key in seen:
            continue
        seen.add(key)
        add("spdm_msg_misc", "vdm-%s" % proto, c12 + m)
        if proto == "tdisp":
            add("tdisp_msg", "tdisp-%s" % ("req" if is_req else "rsp"), b"\x00" + payload)
            if not is_req:
                add("tdisp_msg", "tdisp-rsp-fetch", b"\x41" + payload)
        if proto == "idekm":
            # op 0, in session, the payload; op 6: every checker on it.
            add("keyprog", "idekm-%s" % ("req" if is_req else "rsp"), b"\x00\x01" + chunk(payload) + b"\x06" + chunk(payload))

    # tdisp_responder: the capture's requests in order (in session 0), then harness walks.
    reqs = [p for r, proto, _, p in msgs if r and proto == "tdisp"]
    walk = b"".join(b"\x00\x01" + chunk(p) for p in reqs[:12])
    add("tdisp_responder", "capture-walk", walk)
    lock, start, report, stop, state, ver = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05", b"\x06"
    add("tdisp_responder", "lock-report-start-stop",
        ver + b"\x00" + ver + b"\x02" + lock + b"\x00\x01" + report + b"\x00" + b"\x00\x00\x00\x01"
        + report + b"\x00" + b"\x00\x01\x00\x10" + start + b"\x00" + state + b"\x00" + stop + b"\x00" + state + b"\x00")
    add("tdisp_responder", "lock-event-start",
        lock + b"\x01\x03" + b"\x07\x01\x00" + start + b"\x01" + stop + b"\x01" + lock + b"\x01\x00" + start + b"\x81"
        + start + b"\x01")
    add("tdisp_responder", "keys-off-lock", b"\x08\x00" + lock + b"\x00\x00" + b"\x08\x03" + lock + b"\x00\x00" + start + b"\x00")

    # keyprog: harness-built UALinkSec sequences (target byte: port 1, Tx, Active, peer 2).
    t, ta = b"\x25", b"\x2d"
    add("keyprog", "ualink-prog-go-roll",
        b"\x05\x01" + b"\x01" + t + b"\x01\x00\x00\x00\x42" + b"\x02" + t + b"\x01" + ta + b"\x02\x00\x00\x00\x43"
        + b"\x04" + ta + b"\x01\x00" + b"\x03" + t)
    add("keyprog", "ualink-outside-session", b"\x00\x00" + chunk(bytes([0, 0x80, 0, 1])))

    # spdm_responder stage 2 (P-256, 1.2, DOE framing like the capture): the capture's IDE_KM
    # and TDISP payloads as VENDOR_DEFINED application requests, then heartbeat, key update, end.
    cfg = bytes([0x04 | 0x08])
    ops = b""
    n = 0
    for r, proto, _, p in msgs:
        if r and proto in ("tdisp", "idekm") and n < 10:
            ops += b"\x02\x02" + chunk(p)
            n += 1
    ops += b"\x02\x00" + chunk(b"") + b"\x02\x05" + chunk(b"") + b"\x02\x03" + chunk(b"")
    add("spdm_responder", "session-vendor-walk", cfg + ops)
    add("spdm_responder", "session-p384-v13-mctp", bytes([0x01 | 0x04 | 0x20]) + b"\x02\x00\x00\x00\x02\x01\x00\x00"
        + b"\x01" + chunk(bytes.fromhex("feff0000010000") + bytes(20)) + b"\x02\x03\x00\x00")


def engines():
    for name, (hl, sl, rsl, dl) in CAPTURES.items():
        entries = read_entries(os.path.join(DATA, name + ".transcript.full.txt"))
        plain = [(head, m) for head, m in entries if " SPDM v" in head]
        reqs = [m for head, m in plain if m[1] & 0x80]
        rsps = [m for head, m in plain if not m[1] & 0x80]
        secured = [m for head, m in entries if head.startswith("#") and "SECURED" in head]
        p384 = hl == 48
        v13 = "v13" in name
        doe = "pcidoe" in name
        # Responder, fresh: the capture's plain requests in order.
        cfg = bytes([(1 if p384 else 0) | (0x08 if doe else 0) | (0x20 if v13 else 0)])
        ops = b"".join(b"\x00" + chunk(m) for m in reqs[:16])
        ops += b"".join(b"\x01" + chunk(m) for m in secured[:2])
        add("spdm_responder", "fresh-%s" % name.split("_")[0], cfg + ops)
        # Requester: the capture's responses as raw replacements from the first one on
        # (session, matching curve/version/framing), and corruption of a real one.
        b0 = (1 if p384 else 0) | (2 if v13 else 0) | 0x04 | (0x10 if doe else 0) | 0x20
        ops = b"".join(b"\x00" + chunk(m) for m in rsps[:12])
        add("spdm_requester", "raw-%s" % name.split("_")[0], bytes([b0, 0]) + ops)
        for n in (1, 3, 5, 7, 9):
            add("spdm_requester", "flip-%s-%d" % (name.split("_")[0], n), bytes([b0, n]) + b"\x02\x01\x10\x00")
        add("spdm_requester", "secured-%s" % name.split("_")[0], bytes([b0, 8]) + b"".join(b"\x01" + chunk(m) for m in secured[:3]))
        # Secured records: raw (capture ciphertext), honest, flipped, key updates.
        for rec in secured[:4]:
            add("spdm_secured", "raw-%s" % name.split("_")[0], bytes([1 if doe else 0]) + b"\x00" + chunk(rec) + b"\x07" + chunk(rec))
    hb = bytes([0x05, 0x12, 0x68, 0, 0])
    for cfg in (0, 1, 2, 3, 6, 7):
        add("spdm_secured", "honest-%d" % cfg,
            bytes([cfg]) + b"\x01" + chunk(hb) + b"\x00\x00\x00" + b"\x02" + chunk(hb) + b"\x00\x00\x00"
            + b"\x06" + b"\x03\x00" + b"\x01" + chunk(hb) + b"\x00\x00\x00" + b"\x04\x00"
            + b"\x05\x00" + chunk(hb) + b"\x01" + chunk(hb) + b"\x07\x05\x00")


def kdrv():
    # (file, selector < 0xf0 = ioctl table index, u16 len, user bytes), see kdrv_ioctl.rs.
    for f in range(4):
        ops = b"".join(bytes([f, sel]) + chunk(bytes(48)) for sel in range(16))
        add("kdrv_ioctl", "each-ioctl-file%d" % f, ops)
    add("kdrv_ioctl", "raw-cmd", b"\x01\xf0" + struct.pack("<I", 0xC0105500) + chunk(bytes(16)))


ATTEST = os.path.join(HERE, "..", "ualink-attest", "tests", "data")


def attest():
    # Real SEV-SNP reports with the selector of their certificate (see attest_snp.rs), the TDX
    # sample quotes, a minimal audit log, and small CBOR/JSON/COSE shapes for the others.
    def rd(*p):
        with open(os.path.join(*p), "rb") as f:
            return f.read()

    milan = bytes.fromhex(re.sub(rb"[^0-9a-fA-F]", b"", rd(ATTEST, "snp", "report_milan.hex")).decode())
    add("attest_snp", "milan-vcek", b"\x00" + milan)
    add("attest_snp", "test-vcek", b"\x02" + rd(ATTEST, "snp", "test-report.bin"))
    add("attest_snp", "test-vlek", b"\x03" + rd(ATTEST, "snp", "test-vlek-report.bin"))
    add("attest_snp", "own-leaf", b"\x04" + chunk(rd(ATTEST, "snp", "vcek_milan.der")) + milan)
    add("attest_tdx", "quote", rd(ATTEST, "tdx", "tdx_quote"))
    add("attest_tdx", "quote-outdated", rd(ATTEST, "tdx", "tdx_quote_outdated"))
    import zlib
    header = b"UALINKAL" + struct.pack(">HH", 1, 0)

    def frame(t, payload):
        body = bytes([t]) + struct.pack(">I", len(payload)) + payload
        return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    rec = b"\xa3\x64time\x1a\x68\x00\x00\x00\x64kind\x00\x67subject\x63dev"
    add("attest_audit", "header-only", b"\x00" + header)
    add("attest_audit", "one-entry", b"\x00" + header + frame(1, struct.pack(">Q", 0) + bytes(48) + rec))
    add("attest_audit", "record", b"\x00" + rec)
    add("attest_audit", "trusted-cp", b"\x01" + chunk(b"\xd2\x84\x43\xa1\x01\x38\x22\xa0\x40\x58\x60" + bytes(96)) + header)
    add("attest_bundles", "empty-map", b"\xa0")
    add("attest_bundles", "version-1", b"\xa2\x00\x01\x01\x00")
    add("attest_bundles", "version-1-bytes", b"\xa3\x00\x01\x01\x00\x02\x44\x00\x01\x02\x03")
    jwe = (b'{"protected":"eyJhbGciOiJFQ0RILUVTK0EyNTZLVyIsImVuYyI6IkEyNTZHQ00iLCJlcGsiOnsia3R5IjoiRUMiLCJjcnYiOiJQLTI1NiIsIngiOiJnSTBHQUlMQmR1N1Q1M2FrckZtTXlHY3NGM241ZE83TW13TkJIS1c1U1YwIiwieSI6IlNMV19BQi1MSGx5eVdpMGRPQTlYemJmVkZYdWlnbjhjRmxRMVhnOE1WdTgifX0",'
           b'"encrypted_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","iv":"AAAAAAAAAAAAAAAA","ciphertext":"AAAA","tag":"AAAAAAAAAAAAAAAAAAAAAA"}')
    add("kbs_response", "jwe", b"\x01" + jwe)
    add("kbs_response", "challenge", b"\x02" + b'{"nonce":"abc","extra-params":{"b":[1,2,{"a":null}],"a":"\\u00e9"}}')
    add("kbs_response", "token", b"\x02" + b'{"token":"eyJ.eyJ.sig","tee_pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"AA","y":"AA"}}')
    add("kbs_response", "resource-path", b"\x04" + b"default/key/1")
    add("kdrv_grant", "kat", rd(HERE, "..", "ualink-kdrv", "tests", "data", "grant-kat.cose"))


def main():
    kdrv()
    attest()
    spdm_codecs()
    vendor_and_tdisp()
    engines()
    for target, files in seeds.items():
        d = os.path.join(CORPUS, target)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
        for fname, data in sorted(files.items()):
            with open(os.path.join(d, fname), "wb") as f:
                f.write(data)
    total = sum(len(v) for f in seeds.values() for v in f.values())
    print("%d targets, %d files, %d bytes" % (len(seeds), sum(len(f) for f in seeds.values()), total))


if __name__ == "__main__":
    main()
