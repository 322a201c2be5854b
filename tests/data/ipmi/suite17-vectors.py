#!/usr/bin/env python3
"""Independent test vectors for RMCP+ cipher suite 17 (RAKP-HMAC-SHA256, HMAC-SHA256-128).

ipmi_sim cannot do suite 17, so src/power/ipmi/wire.rs checks its key exchange against these
numbers, computed here with Python's hmac/hashlib straight from the IPMI 2.0 formulas (§13.31,
§13.32). Run: python3 tests/data/ipmi/suite17-vectors.py
"""
import hashlib
import hmac
import struct


def h(key, *parts):
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


password = b"tbpass123"
user = b"admin"
role = 0x14                      # ADMINISTRATOR | name-only lookup
sidm = struct.pack("<I", 0xA0A1A2A3)  # remote console session ID
sidc = struct.pack("<I", 0x01020304)  # managed system (BMC) session ID
rm = bytes(range(16))
rc = bytes(0x10 + i for i in range(16))
guid = bytes(0xF0 - i for i in range(16))
ro = bytes([role, len(user)]) + user

rakp2 = h(password, sidm, sidc, rm, rc, guid, ro)
rakp3 = h(password, rc, sidm, ro)
sik = h(password, rm, rc, ro)
rakp4 = h(sik, rm, sidc, guid)[:16]
k1 = h(sik, b"\x01" * 32)
k2 = h(sik, b"\x02" * 32)
auth = h(k1, b"\x06\xc0\x04\x03\x02\x01")[:16]
for name, v in [("rakp2", rakp2), ("rakp3", rakp3), ("sik", sik), ("rakp4", rakp4),
                ("k1", k1), ("aes", k2[:16]), ("auth_code", auth)]:
    print(name, v.hex())
