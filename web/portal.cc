#include "web/portal.h"

#include <map>
#include <string>

#include "api/server.h"
#include "core/encoding.h"
#include "web/assets.h"

namespace herald {
namespace {

// The portal loads nothing but its own files and talks to nothing but this server.
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

struct ServedAsset {
  std::string_view body;
  std::string content_type;
  std::string etag;
};

std::string content_type_of(std::string_view name) {
  auto ends_with = [&](std::string_view ext) { return name.ends_with(ext); };
  if (ends_with(".html")) return "text/html; charset=utf-8";
  if (ends_with(".css")) return "text/css; charset=utf-8";
  if (ends_with(".js")) return "text/javascript; charset=utf-8";
  if (ends_with(".svg")) return "image/svg+xml";
  if (ends_with(".png")) return "image/png";
  return "application/octet-stream";
}

// The embedded files by name, with their content types and ETags. Built once.
const std::map<std::string, ServedAsset, std::less<>>& served_assets() {
  static const auto* kServed = [] {
    auto* out = new std::map<std::string, ServedAsset, std::less<>>();
    for (const auto& a : portal_assets()) {
      std::string etag = "\"" + hex_encode(sha256(a.body)).substr(0, 32) + "\"";
      (*out)[std::string(a.name)] = ServedAsset{a.body, content_type_of(a.name), std::move(etag)};
    }
    return out;
  }();
  return *kServed;
}

void set_security_headers(http::Response& res) {
  res.set_header("Content-Security-Policy", kContentSecurityPolicy);
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Cache-Control", "no-cache");
}

// Serves `name` from the embedded files (304 when the client's copy is current), else 404.
void serve_asset(const http::Request& req, http::Response& res, std::string_view name) {
  const auto& assets = served_assets();
  auto it = assets.find(name);
  if (it == assets.end()) {
    res.status = 404;
    res.set_content(R"({"code":"not_found","detail":"portal file not found"})", "application/json");
    return;
  }
  set_security_headers(res);
  res.set_header("ETag", it->second.etag);
  if (req.header("If-None-Match") == it->second.etag) {
    res.status = 304;
    return;
  }
  res.status = 200;
  res.set_content(std::string(it->second.body), it->second.content_type);
}

}  // namespace

void register_portal_routes(ApiServer& s) {
  // Assets are public (the page itself holds no data); everything it shows comes from the
  // JSON API with the visitor's token. Not registered through route(): that would need a token.
  s.http().route("GET", "/portal", [](const http::Request&, http::Response& res) {
    // Relative, so a deployment under a path prefix keeps working; browsers keep the fragment.
    res.status = 302;
    res.set_header("Location", "portal/");
    set_security_headers(res);
    res.set_content(R"({"code":"redirect","detail":"the portal is at /portal/"})",
                    "application/json");
  });
  s.http().route("GET", "/portal/", [](const http::Request& req, http::Response& res) {
    serve_asset(req, res, "index.html");
  });
  s.http().route("GET", R"(/portal/([A-Za-z0-9_.-]+))",
                 [](const http::Request& req, http::Response& res) {
                   serve_asset(req, res, req.matches[1].str());
                 });
}

}  // namespace herald
