#include "api/openapi_import.h"

#include <algorithm>
#include <array>
#include <string>

namespace herald {
namespace {

using json = nlohmann::ordered_json;

// Bounds what inlining $refs may build over a whole document: a few kilobytes could otherwise
// name one schema a million times.
constexpr size_t kMaxInlinedNodes = 250'000;
constexpr size_t kMaxSchemaBytes = 64 * 1024;
constexpr size_t kMaxDescription = 1024;
constexpr size_t kMaxFeatureFlags = 100;
// The operations a webhook's path item may hold, the one a webhook is usually sent as first.
constexpr std::array kOperations = {"post",   "put",     "patch", "get",
                                    "delete", "options", "head",  "trace"};

json at(const json& loc, const json& key) {
  json out = loc;
  out.push_back(key);
  return out;
}

// Inlines a document's local $refs ("#/..."). Each call reports at most one problem.
class RefInliner {
 public:
  RefInliner(const JsonIn& root, BodyReader& r) : root_(root), r_(r) {}

  // `node` with every $ref in it replaced by what it points to; nullopt after a problem,
  // reported at `loc`.
  std::optional<json> inline_refs(const JsonIn& node, const json& loc) {
    if (++nodes_ > kMaxInlinedNodes) {
      return fail(loc, "is too large once its $refs are inlined");
    }
    if (node.is_object()) {
      auto ref = node.find("$ref");
      if (ref != node.end() && ref->is_string()) return follow(node, *ref, loc);
      json out = json::object();
      for (const auto& [key, value] : node.items()) {
        auto v = inline_refs(value, at(loc, key));
        if (!v) return std::nullopt;
        out[key] = std::move(*v);
      }
      return out;
    }
    if (node.is_array()) {
      json out = json::array();
      for (size_t i = 0; i < node.size(); ++i) {
        auto v = inline_refs(node[i], at(loc, i));
        if (!v) return std::nullopt;
        out.push_back(std::move(*v));
      }
      return out;
    }
    return json(node);
  }

  // What a $ref object points to, itself not inlined further (for path items and bodies).
  const JsonIn* resolve(const JsonIn& node, const json& loc) {
    const JsonIn* cur = &node;
    for (int hops = 0; cur->is_object() && cur->contains("$ref"); ++hops) {
      const auto& ref = (*cur)["$ref"];
      if (!ref.is_string() || hops > 16) {
        fail(loc, "has a $ref that leads nowhere");
        return nullptr;
      }
      cur = target(ref.get<std::string>(), loc);
      if (cur == nullptr) return nullptr;
    }
    return cur;
  }

 private:
  std::optional<json> follow(const JsonIn& node, const JsonIn& ref, const json& loc) {
    const std::string name = ref.get<std::string>();
    if (std::find(stack_.begin(), stack_.end(), name) != stack_.end()) {
      return fail(loc, "refers to itself through $ref '" + name +
                           "': a recursive schema cannot be inlined");
    }
    const JsonIn* t = target(name, loc);
    if (t == nullptr) return std::nullopt;
    stack_.push_back(name);
    auto out = inline_refs(*t, loc);
    stack_.pop_back();
    if (!out) return std::nullopt;
    // OpenAPI 3.1 lets keywords stand beside a $ref (a description, say): they win.
    if (out->is_object()) {
      for (const auto& [key, value] : node.items()) {
        if (key == "$ref") continue;
        auto v = inline_refs(value, at(loc, key));
        if (!v) return std::nullopt;
        (*out)[key] = std::move(*v);
      }
    }
    return out;
  }

  const JsonIn* target(const std::string& ref, const json& loc) {
    if (ref.rfind("#/", 0) != 0) {
      fail(loc, "has $ref '" + ref + "': only references within the document (#/...) are read");
      return nullptr;
    }
    try {
      const JsonIn& t = root_.at(JsonIn::json_pointer(ref.substr(1)));
      return &t;
    } catch (const nlohmann::json::exception&) {
      fail(loc, "has $ref '" + ref + "', which names nothing in the document");
      return nullptr;
    }
  }

  std::nullopt_t fail(const json& loc, const std::string& msg) {
    r_.error_at(loc, msg);
    return std::nullopt;
  }

  const JsonIn& root_;
  BodyReader& r_;
  std::vector<std::string> stack_;  // the $refs being inlined, outermost first
  size_t nodes_ = 0;
};

// The first string of `keys` in `o`, if any.
std::optional<std::string> first_string(const JsonIn& o, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = o.find(k);
    if (it != o.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
      return it->get<std::string>();
    }
  }
  return std::nullopt;
}

// The request body's JSON media type of `content` (application/json, else one such as
// application/json; charset=utf-8 or application/cloudevents+json), or end().
JsonIn::const_iterator json_media(const JsonIn& content) {
  if (auto it = content.find("application/json"); it != content.end()) return it;
  for (auto it = content.begin(); it != content.end(); ++it) {
    const std::string& type = it.key();
    if (type.rfind("application/json", 0) == 0 ||
        (type.rfind("application/", 0) == 0 && type.find("+json") != std::string::npos)) {
      return it;
    }
  }
  return content.end();
}

void read_webhook(const std::string& name, const JsonIn& raw_item, const json& loc,
                  RefInliner& refs, BodyReader& r, std::vector<EventType>& out) {
  if (!valid_name(name)) {
    r.error_at(loc,
               "'" + name + "' is not a valid event type name (1 to 256 of A-Z a-z 0-9 _ . -)");
    return;
  }
  const JsonIn* item = refs.resolve(raw_item, loc);
  if (item == nullptr) return;
  if (!item->is_object()) {
    r.error_at(loc, "must be a path item object");
    return;
  }
  const JsonIn* op = nullptr;
  json op_loc;
  for (const char* method : kOperations) {
    if (auto it = item->find(method); it != item->end() && it->is_object()) {
      op = &*it;
      op_loc = at(loc, method);
      break;
    }
  }
  if (op == nullptr) {
    r.error_at(loc, "declares no operation (post, put, ...)");
    return;
  }
  EventType et;
  et.name = name;
  et.description = first_string(*op, {"description", "summary"})
                       .value_or(first_string(*item, {"description", "summary"}).value_or(""));
  if (et.description.size() > kMaxDescription) {
    r.error_at(at(op_loc, "description"),
               "must be at most " + std::to_string(kMaxDescription) + " characters");
  }
  if (auto it = op->find("deprecated"); it != op->end()) {
    if (it->is_boolean()) {
      et.deprecated = it->get<bool>();
    } else {
      r.error_at(at(op_loc, "deprecated"), "must be a boolean", "type_error.bool");
    }
  }
  for (const JsonIn* o : {op, item}) {
    auto it = o->find("x-svix-group-name");
    if (it == o->end() || et.group_name) continue;
    if (it->is_string() && it->get_ref<const std::string&>().size() <= 256) {
      et.group_name = it->get<std::string>();
    } else {
      r.error_at(at(o == op ? op_loc : loc, "x-svix-group-name"),
                 "must be a string of at most 256 characters", "type_error.str");
    }
  }
  if (auto it = op->find("x-svix-feature-flags"); it != op->end()) {
    json flags_loc = at(op_loc, "x-svix-feature-flags");
    bool ok = it->is_array() && it->size() <= kMaxFeatureFlags;
    std::vector<std::string> flags;
    for (size_t i = 0; ok && i < it->size(); ++i) {
      const auto& f = (*it)[i];
      ok = f.is_string() && valid_name(f.get_ref<const std::string&>());
      if (ok && std::find(flags.begin(), flags.end(), f.get<std::string>()) == flags.end()) {
        flags.push_back(f.get<std::string>());
      }
    }
    if (!ok) {
      r.error_at(flags_loc, "must be a list of at most " + std::to_string(kMaxFeatureFlags) +
                                " names (A-Z a-z 0-9 _ . -)");
    } else if (!flags.empty()) {
      et.feature_flags = std::move(flags);
    }
  }
  if (auto it = op->find("requestBody"); it != op->end()) {
    json body_loc = at(op_loc, "requestBody");
    const JsonIn* body = refs.resolve(*it, body_loc);
    if (body == nullptr) return;
    auto content = body->is_object() ? body->find("content") : body->end();
    if (content == body->end() || !content->is_object()) {
      out.push_back(std::move(et));  // a webhook without a payload: no schema
      return;
    }
    auto media = json_media(*content);
    if (media != content->end() && media->is_object() && media->contains("schema")) {
      json schema_loc = at(at(at(body_loc, "content"), media.key()), "schema");
      auto schema = refs.inline_refs((*media)["schema"], schema_loc);
      if (!schema) return;
      if (!schema->is_object()) {
        r.error_at(schema_loc, "must be a JSON schema object", "type_error.dict");
        return;
      }
      json schemas{{"1", std::move(*schema)}};
      et.schemas_json = schemas.dump();
      if (et.schemas_json->size() > kMaxSchemaBytes) {
        r.error_at(schema_loc, "is too large (at most " + std::to_string(kMaxSchemaBytes) +
                                   " bytes once its $refs are inlined)");
      }
    }
  }
  out.push_back(std::move(et));
}

}  // namespace

std::vector<EventType> event_types_from_openapi(const JsonIn& spec, BodyReader& r,
                                                const json& loc) {
  std::vector<EventType> out;
  if (!spec.is_object()) {
    r.error_at(loc, "must be an OpenAPI document (a JSON object)", "type_error.dict");
    return out;
  }
  const auto version = spec.find("openapi");
  if (version == spec.end() || !version->is_string() ||
      version->get_ref<const std::string&>().rfind("3.", 0) != 0) {
    r.error_at(at(loc, "openapi"), spec.contains("swagger")
                                       ? "Swagger 2 documents declare no webhooks: send OpenAPI 3"
                                       : "must name OpenAPI 3 (openapi: 3.x.y)");
    return out;
  }
  const char* key = spec.contains("webhooks") ? "webhooks" : "x-webhooks";
  const auto webhooks = spec.find(key);
  if (webhooks == spec.end()) {
    r.error_at(at(loc, "webhooks"), "the document declares no webhooks (webhooks or x-webhooks)",
               "value_error.missing");
    return out;
  }
  if (!webhooks->is_object()) {
    r.error_at(at(loc, key), "must be an object of webhooks by name", "type_error.dict");
    return out;
  }
  RefInliner refs(spec, r);
  for (const auto& [name, item] : webhooks->items()) {
    read_webhook(name, item, at(at(loc, key), name), refs, r, out);
  }
  return out;
}

}  // namespace herald
