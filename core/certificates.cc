#include "core/certificates.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <fstream>
#include <iterator>
#include <memory>

#include "core/encoding.h"

namespace herald {

namespace {

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using Cert = std::unique_ptr<X509, decltype(&X509_free)>;

Bio memory_bio(const std::string& text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), &BIO_free);
}

Cert first_certificate(const std::string& pem) {
  Bio bio = memory_bio(pem);
  Cert cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, &X509_free);
  ERR_clear_error();
  return cert;
}

int64_t asn1_time_ms(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

}  // namespace

std::optional<std::string> ca_bundle_problem(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read " + path;
  const std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bio bio = memory_bio(pem);
  if (!bio) return "out of memory reading " + path;
  int count = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_free(cert);
    ++count;
  }
  // The loop ends at the end of the text (PEM_R_NO_START_LINE) or at a block that is broken.
  const unsigned long err = ERR_peek_last_error();
  const bool clean_end =
      ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
  ERR_clear_error();
  if (!clean_end && err != 0) return path + " holds a PEM block that is not a valid certificate";
  if (count == 0) return path + " holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
  return std::nullopt;
}

std::optional<CertificateInfo> certificate_info(const std::string& pem) {
  Cert cert = first_certificate(pem);
  if (!cert) return std::nullopt;
  CertificateInfo info;
  Bio out(BIO_new(BIO_s_mem()), &BIO_free);
  if (out &&
      X509_NAME_print_ex(out.get(), X509_get_subject_name(cert.get()), 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(out.get(), &data);
    info.subject.assign(data, static_cast<size_t>(n));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert.get(), EVP_sha256(), md, &len) == 1) {
    info.fingerprint = hex_encode({reinterpret_cast<const char*>(md), len});
  }
  info.not_after_ms = asn1_time_ms(X509_get0_notAfter(cert.get()));
  return info;
}

std::optional<std::string> client_certificate_problem(const std::string& cert_pem,
                                                      const std::string& key_pem, int64_t now_ms,
                                                      std::string* field) {
  *field = "cert";
  Cert cert = first_certificate(cert_pem);
  if (!cert) return "must be a PEM certificate (-----BEGIN CERTIFICATE-----)";
  if (asn1_time_ms(X509_get0_notAfter(cert.get())) <= now_ms) return "the certificate has expired";
  *field = "key";
  Bio bio = memory_bio(key_pem);
  // No passphrase callback: an encrypted key fails to load rather than prompting.
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      bio ? PEM_read_bio_PrivateKey(
                bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr)
          : nullptr,
      &EVP_PKEY_free);
  ERR_clear_error();
  if (!key) return "must be an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)";
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return "is not the private key of the certificate's public key";
  }
  return std::nullopt;
}

}  // namespace herald
