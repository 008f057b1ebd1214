#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace herald {

// PEM certificates as users hand them to herald (HERALD_CA_FILE, and later endpoint client
// certificates): parsed with OpenSSL, never trusted blindly.

// nullopt if `path` is a readable file holding at least one PEM certificate and nothing that
// fails to parse as one; else a sentence saying what is wrong.
std::optional<std::string> ca_bundle_problem(const std::string& path);

// What herald shows of a client certificate (never its key).
struct CertificateInfo {
  std::string subject;       // RFC 2253, e.g. "CN=acme-client,O=Acme"
  std::string fingerprint;   // SHA-256 of the DER certificate, lower-case hex
  int64_t not_after_ms = 0;  // when it expires, Unix ms
};

// The first certificate of a PEM chain; nullopt if `pem` holds none.
std::optional<CertificateInfo> certificate_info(const std::string& pem);

// nullopt if `cert_pem` is a PEM certificate (chain) that has not expired at `now_ms` and
// `key_pem` a PEM private key (unencrypted) belonging to its first certificate; else a
// sentence saying what is wrong, and `field` ("cert" or "key") the part at fault.
std::optional<std::string> client_certificate_problem(const std::string& cert_pem,
                                                      const std::string& key_pem, int64_t now_ms,
                                                      std::string* field);

}  // namespace herald
