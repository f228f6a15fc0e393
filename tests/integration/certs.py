#!/usr/bin/env python3
"""Test certificates for the TLS end-to-end tests (python3-cryptography; ECDSA P-256, PEM).

Usage: certs.py DIR                 writes the set below into DIR (created if needed)
       certs.py --fingerprint FILE  prints "sha256:<hex>" of the first certificate in FILE

The set (keys are unencrypted SEC1 "BEGIN EC PRIVATE KEY", mode 0600):
  ca.pem, ca-key.pem                  the test CA
  other-ca.pem, other-ca-key.pem      an unrelated CA (nothing of ours chains to it but badclient.pem)
  server.pem, server-key.pem          DNS:localhost + IP:127.0.0.1, signed by the CA
  expired.pem, expired-key.pem        same names, signed by the CA, notAfter yesterday
  wrongname.pem, wrongname-key.pem    DNS:wrong.example only, signed by the CA
  client.pem, client-key.pem          clientAuth, CN edge-1, signed by the CA
  badclient.pem, badclient-key.pem    clientAuth, CN edge-1, signed by the other CA

Works with python3-cryptography 38 (Debian 12) and later: only long-standing builder APIs are used.
"""
import datetime
import hashlib
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'ringtun tests'),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path, data, private=False):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, 'wb') as f:
        f.write(data)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(cn):
    """A self-signed CA: (certificate, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY).not_valid_after(now + 3650 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def make_leaf(ca, cn, dns=(), ips=(), client=False, not_before=None, not_after=None):
    """A leaf certificate signed by `ca` (a (cert, key) pair): (certificate, key)."""
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    b = (x509.CertificateBuilder()
         .subject_name(_name(cn)).issuer_name(ca_cert.subject)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(not_before or now - DAY).not_valid_after(not_after or now + 825 * DAY)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                      data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                      crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client
                                               else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    names = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return b.sign(ca_key, hashes.SHA256()), key


def write_pair(directory, stem, pair, key_stem=None):
    cert, key = pair
    _write(os.path.join(directory, stem + '.pem'), _cert_pem(cert))
    _write(os.path.join(directory, (key_stem or stem + '-key') + '.pem'), _key_pem(key), private=True)


def write_all(directory):
    """Writes the whole set (see the module docstring) into `directory`; returns {stem: path of its .pem}."""
    os.makedirs(directory, exist_ok=True)
    ca = make_ca('ringtun test CA')
    other = make_ca('ringtun unrelated CA')
    now = _now()
    pairs = {
        'ca': ca,
        'other-ca': other,
        'server': make_leaf(ca, 'localhost', dns=['localhost'], ips=['127.0.0.1']),
        'expired': make_leaf(ca, 'localhost', dns=['localhost'], ips=['127.0.0.1'],
                             not_before=now - 30 * DAY, not_after=now - DAY),
        'wrongname': make_leaf(ca, 'wrong.example', dns=['wrong.example']),
        'client': make_leaf(ca, 'edge-1', client=True),
        'badclient': make_leaf(other, 'edge-1', client=True),
    }
    for stem, pair in pairs.items():
        write_pair(directory, stem, pair)
    return {stem: os.path.join(directory, stem + '.pem') for stem in pairs}


def fingerprint(pem_path):
    """"sha256:<64 lowercase hex>" of the DER of the first certificate in the PEM file."""
    with open(pem_path, 'rb') as f:
        cert = x509.load_pem_x509_certificate(f.read())
    return 'sha256:' + hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def main(argv):
    if len(argv) == 2 and argv[0] == '--fingerprint':
        print(fingerprint(argv[1]))
        return 0
    if len(argv) != 1 or argv[0].startswith('-'):
        print(__doc__.split('\n\n')[1], file=sys.stderr)
        return 2
    for stem, path in write_all(argv[0]).items():
        print('%-10s %s %s' % (stem, path, fingerprint(path)))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
