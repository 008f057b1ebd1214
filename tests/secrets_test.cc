// Secrets at rest: SecretBox, endpoint secrets sealed in the database, master key files,
// rotation; and API tokens from the command line. Everything that needs a database runs on the
// store under test (tests/support/store.h); the "sqlite" suite looks at the bytes of SQLite
// files, which is where a copy of a SQLite database could leak a secret.

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/key_file.h"
#include "cli/master_key_command.h"
#include "cli/token_command.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/encoding.h"
#include "core/ids.h"
#include "core/secret_box.h"
#include "core/signing.h"
#include "core/types.h"
#include "db/app_store.h"
#include "db/database.h"
#include "db/endpoint_store.h"
#include "db/sealing.h"
#include "db/session.h"
#include "db/sqlite/connection.h"
#include "db/sqlite/migrations.h"
#include "db/token_store.h"
#include "tests/support/fixtures.h"
#include "tests/support/sqlite.h"
#include "tests/support/store.h"
#include "tests/support/temp_dir.h"

using namespace herald;
using herald::test::open_sqlite;
using herald::test::scalar;
using herald::test::TempDir;
using herald::test::TestStore;

namespace {

namespace fs = std::filesystem;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every byte of a SQLite database as a copy would hold it: the file and its WAL.
std::string db_bytes(const std::string& path) {
  return read_bytes(path) + read_bytes(path + "-wal");
}

// Copies a SQLite database file and its WAL (as a backup taken while herald runs would).
void copy_db(const std::string& from, const std::string& to) {
  fs::copy_file(from, to);
  if (fs::exists(from + "-wal")) fs::copy_file(from + "-wal", to + "-wal");
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

// The forms a secret could leak in: raw bytes, base64, whsec_, hex.
std::vector<std::string> leak_forms(const std::string& key) {
  return {key, base64_encode(key), "whsec_" + base64_encode(key), hex_encode(key)};
}

std::shared_ptr<const SecretBox> new_box(std::string* key_out = nullptr) {
  std::string key = random_bytes(SecretBox::kKeySize);
  if (key_out) *key_out = key;
  return std::make_shared<const SecretBox>(key);
}

std::shared_ptr<const SecretBox> box_of(const std::string& key) {
  return std::make_shared<const SecretBox>(key);
}

TimeMs now_ms() {
  return SystemClock().now_ms();
}

Endpoint make_endpoint(const std::string& app_id) {
  Endpoint e;
  e.id = new_id(kEndpointPrefix, now_ms());
  e.app_id = app_id;
  e.url = "https://example.com/hook";
  e.created_at = e.updated_at = now_ms();
  return e;
}

// Endpoints with their keys, written through the stores.
struct Fixture {
  std::string app_id;
  std::vector<std::pair<std::string, std::string>> keys;  // endpoint id, current key
  std::string rotated_out;                                // still signing, in its grace period
  std::pair<std::string, SigningKey> ed25519;             // an endpoint with an Ed25519 key
};

// How many keys fill() stores: three endpoints' keys, one rotated-out key, the Ed25519 key.
constexpr int kFixtureKeys = 5;

Fixture fill(Database& db) {
  auto s = db.session();
  Fixture f;
  f.app_id = test::add_app(*s, now_ms(), "acme", "acme").id;
  for (int i = 0; i < 3; ++i) {
    std::string key = *decode_secret(generate_secret());
    const auto ep = test::add_endpoint(*s, f.app_id, "https://example.com/hook", key, now_ms());
    f.keys.emplace_back(ep.id, key);
  }
  // The first endpoint's secret is rotated: its old key keeps signing for a day.
  f.rotated_out = f.keys[0].second;
  f.keys[0].second = random_bytes(24);
  s->endpoints().rotate_key(f.keys[0].first, test::hmac_key(f.keys[0].second), 86'400'000,
                            now_ms());
  // An Ed25519 private key is sealed like any secret.
  Endpoint ed = make_endpoint(f.app_id);
  ed.signature_scheme = SignatureScheme::kEd25519;
  f.ed25519 = {ed.id, generate_key(KeyKind::kEd25519)};
  s->endpoints().insert(ed, f.ed25519.second);
  return f;
}

std::vector<std::string> all_keys(const Fixture& f) {
  std::vector<std::string> out{f.rotated_out, f.ed25519.second.bytes};
  for (const auto& [id, key] : f.keys) out.push_back(key);
  return out;
}

// Every key of `f` reads back through `db`, the rotated-out one included.
void check_keys(Database& db, const Fixture& f) {
  auto s = db.session();
  EndpointStore& endpoints = s->endpoints();
  for (const auto& [id, key] : f.keys) {
    CHECK(endpoints.current_key(id) == test::opt_hmac_key(key));
  }
  CHECK(endpoints.signing_keys(f.keys[0].first, now_ms()) ==
        test::hmac_keys({f.keys[0].second, f.rotated_out}));
  CHECK(endpoints.current_key(f.ed25519.first) == std::optional(f.ed25519.second));
}

// The keys of `f` as the store holds them, by endpoint.
std::map<std::string, std::vector<StoredKey>> stored(Database& db, const Fixture& f) {
  auto s = db.session();
  std::map<std::string, std::vector<StoredKey>> out;
  for (const auto& [id, key] : f.keys) out[id] = s->endpoints().stored_keys(id);
  out[f.ed25519.first] = s->endpoints().stored_keys(f.ed25519.first);
  return out;
}

// Every key of `f` lies sealed in the store, in none of the forms it could leak in.
void check_sealed_at_rest(Database& db, const Fixture& f) {
  size_t n = 0;
  for (const auto& [id, keys] : stored(db, f)) {
    for (const auto& k : keys) {
      ++n;
      CHECK(k.sealed);
      for (const auto& plain : all_keys(f)) {
        for (const auto& form : leak_forms(plain)) CHECK_FALSE(contains(k.bytes, form));
      }
    }
  }
  CHECK(n == kFixtureKeys);
}

// Redirects std::cout and std::cerr while alive.
class Capture {
 public:
  Capture() : out_buf_(std::cout.rdbuf(out_.rdbuf())), err_buf_(std::cerr.rdbuf(err_.rdbuf())) {}
  ~Capture() {
    std::cout.rdbuf(out_buf_);
    std::cerr.rdbuf(err_buf_);
  }
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;
  std::string out() const { return out_.str(); }
  std::string err() const { return err_.str(); }

 private:
  std::ostringstream out_, err_;
  std::streambuf* out_buf_;
  std::streambuf* err_buf_;
};

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// herald serve's settings for the database at `location` with its key in `key_file` (named:
// a PostgreSQL database has no file to put it next to), or in HERALD_MASTER_KEY.
Config config_for(const std::string& location, const std::string& key_file,
                  std::optional<std::string> master_key = {}) {
  std::map<std::string, std::string> env{{"HERALD_DB", location},
                                         {"HERALD_MASTER_KEY_FILE", key_file}};
  if (master_key) env["HERALD_MASTER_KEY"] = base64_encode(*master_key);
  std::string error;
  auto config = parse_serve_config({}, env_of(env), &error);
  REQUIRE_MESSAGE(config, error);
  return *config;
}

// The key file the tests of `store` use.
std::string key_file_of(const TestStore& store) {
  return store.dir().file("master.key");
}

unsigned file_mode(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// SecretBox

TEST_CASE("SecretBox round-trips, with a fresh nonce every time") {
  const SecretBox box(random_bytes(32));
  for (size_t n : {0, 1, 24, 32, 64, 1000}) {
    CAPTURE(n);
    const std::string plain = random_bytes(n);
    const std::string a = box.seal(plain, "ep_1");
    const std::string b = box.seal(plain, "ep_1");
    CHECK(a.size() == plain.size() + SecretBox::kOverhead);
    CHECK(a[0] == '\x01');
    CHECK(a != b);
    CHECK(a.substr(1, 12) != b.substr(1, 12));  // the nonces differ
    CHECK(box.open(a, "ep_1") == std::optional<std::string>(plain));
    CHECK(box.open(b, "ep_1") == std::optional<std::string>(plain));
    if (n >= 24) CHECK_FALSE(contains(a, plain));
  }
}

TEST_CASE("SecretBox detects a flipped bit anywhere, and truncation") {
  const SecretBox box(random_bytes(32));
  const std::string plain = random_bytes(32);
  const std::string sealed = box.seal(plain, "ctx");
  int opened = 0;
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string t = sealed;
      t[i] = static_cast<char>(t[i] ^ (1 << bit));
      if (box.open(t, "ctx")) ++opened;
    }
  }
  CHECK(opened == 0);
  for (size_t n = 0; n < sealed.size(); ++n) CHECK_FALSE(box.open(sealed.substr(0, n), "ctx"));
  CHECK_FALSE(box.open(sealed + "x", "ctx"));
  CHECK(box.open(sealed, "ctx") == std::optional<std::string>(plain));
}

TEST_CASE("SecretBox: another key or another context does not open") {
  const std::string key = random_bytes(32);
  const SecretBox box(key);
  const std::string sealed = box.seal("whsec-bytes", "ep_1");
  CHECK_FALSE(SecretBox(random_bytes(32)).open(sealed, "ep_1"));
  std::string near = key;
  near[31] = static_cast<char>(near[31] ^ 1);
  CHECK_FALSE(SecretBox(near).open(sealed, "ep_1"));
  CHECK_FALSE(box.open(sealed, "ep_2"));
  CHECK_FALSE(box.open(sealed));
  CHECK(SecretBox(key).open(sealed, "ep_1") == std::optional<std::string>("whsec-bytes"));
  CHECK_THROWS_AS(SecretBox(random_bytes(31)), std::invalid_argument);
  CHECK_THROWS_AS(SecretBox(random_bytes(33)), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Configuration

TEST_CASE("HERALD_MASTER_KEY and HERALD_MASTER_KEY_FILE") {
  std::string error;
  const std::string key = random_bytes(32);
  auto c = parse_serve_config({}, env_of({{"HERALD_MASTER_KEY", base64_encode(key)}}), &error);
  REQUIRE(c);
  CHECK(c->master_key == std::optional<std::string>(key));
  CHECK(c->master_key_file == "./herald.db.key");

  c = parse_serve_config({"--db", "/var/lib/herald/h.db"}, env_of({}), &error);
  REQUIRE(c);
  CHECK_FALSE(c->master_key);
  CHECK(c->master_key_file == "/var/lib/herald/h.db.key");
  c = parse_serve_config({}, env_of({{"HERALD_MASTER_KEY_FILE", "/etc/herald/key"}}), &error);
  REQUIRE(c);
  CHECK(c->master_key_file == "/etc/herald/key");

  for (const std::string& bad : {std::string("not base64!"), base64_encode(random_bytes(31)),
                                 base64_encode(random_bytes(33)), std::string("")}) {
    CAPTURE(bad);
    error.clear();
    CHECK_FALSE(parse_serve_config({}, env_of({{"HERALD_MASTER_KEY", bad}}), &error));
    CHECK(error.starts_with("HERALD_MASTER_KEY: "));
    CHECK(error.find('\n') == std::string::npos);
    if (!bad.empty()) CHECK_FALSE(contains(error, bad));  // a key is never echoed
  }
  const std::string help = serve_help();
  CHECK(contains(help, "HERALD_MASTER_KEY,"));
  CHECK(contains(help, "HERALD_MASTER_KEY_FILE"));
}

// ---------------------------------------------------------------------------------------------
// Sealed endpoint secrets

TEST_CASE("a wrong key is refused at open even when no endpoint has a secret yet") {
  TestStore store;
  std::string key;
  { auto db = store.open(1, new_box(&key)); }
  CHECK_THROWS_AS(store.open(1, new_box()), MasterKeyMismatch);
  auto again = store.open(1, box_of(key));
  auto s = again->session();
  CHECK(is_sealed(*s));
  CHECK_NOTHROW(require_master_key(*s, SecretBox(key)));
  CHECK_THROWS_AS(require_master_key(*s, SecretBox(random_bytes(32))), MasterKeyMismatch);
}

TEST_CASE("endpoint secrets lie sealed; without the key the rest reads, a secret does not") {
  TestStore store;
  std::string key;
  Fixture f;
  {
    auto db = store.open(2, new_box(&key));
    f = fill(*db);
    check_keys(*db, f);
    check_sealed_at_rest(*db, f);
  }
  // Opened with another key: refused, clearly.
  try {
    store.open(1, new_box());
    FAIL("a wrong master key opened the database");
  } catch (const MasterKeyMismatch& e) {
    CHECK(contains(e.what(), "master key does not match"));
  }
  {
    auto keyless = store.open(1);
    auto s = keyless->session();
    CHECK(s->apps().get("acme").has_value());
    CHECK_THROWS_AS(s->endpoints().current_key(f.keys[1].first), MasterKeyMismatch);
    CHECK_THROWS_AS(s->endpoints().signing_keys(f.keys[1].first, now_ms()), MasterKeyMismatch);
  }
  auto right = store.open(1, box_of(key));
  check_keys(*right, f);
}

TEST_CASE("reseal_all: the old key no longer opens, the new one does, every key unchanged") {
  TestStore store;
  std::string old_key;
  const std::string new_key = random_bytes(32);
  Fixture f;
  std::map<std::string, std::vector<StoredKey>> before;
  {
    auto db = store.open(1, new_box(&old_key));
    f = fill(*db);
    before = stored(*db, f);
    CHECK(reseal_all(*db, SecretBox(new_key)) == kFixtureKeys);
  }
  CHECK_THROWS_AS(store.open(1, box_of(old_key)), MasterKeyMismatch);
  auto db = store.open(1, box_of(new_key));
  check_keys(*db, f);
  check_sealed_at_rest(*db, f);
  // Every stored value was sealed again: none is what it was, none opens with the old key.
  const SecretBox old_box(old_key);
  const auto after = stored(*db, f);
  for (const auto& [id, keys] : before) {
    CAPTURE(id);
    REQUIRE(after.at(id).size() == keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      const StoredKey& now = after.at(id)[i];
      CHECK(now.bytes != keys[i].bytes);
      CHECK_FALSE(old_box.open(now.bytes, id).has_value());
      CHECK(now.created_at == keys[i].created_at);
      CHECK(now.expires_at == keys[i].expires_at);
    }
  }
}

TEST_CASE("a server still on the old key cannot write secrets after a rotation") {
  TestStore store;
  std::string key;
  auto stale = store.open(1, new_box(&key));
  const Fixture f = fill(*stale);
  {
    // herald master-key rotate, from another process.
    auto other = store.open(1, box_of(key));
    CHECK(reseal_all(*other, SecretBox(random_bytes(32))) == kFixtureKeys);
  }
  auto s = stale->session();
  EndpointStore& endpoints = s->endpoints();
  const auto ep = make_endpoint(f.app_id);
  CHECK_THROWS_AS(endpoints.insert(ep, test::hmac_key(random_bytes(32))), MasterKeyMismatch);
  CHECK_FALSE(endpoints.get(f.app_id, ep.id));  // nothing half-written
  CHECK_THROWS_AS(
      endpoints.rotate_key(f.keys[1].first, test::hmac_key(random_bytes(32)), 0, now_ms()),
      MasterKeyMismatch);
  CHECK_THROWS_AS(endpoints.current_key(f.keys[1].first), MasterKeyMismatch);
}

// ---------------------------------------------------------------------------------------------
// Key files and opening under the master key

TEST_CASE(
    "key files: created whole with mode 0600 whatever the umask, read back, refused if open") {
  TempDir dir;
  const std::string path = dir.file("k");
  const std::string key = random_bytes(32);
  std::string error;
  const mode_t old_umask = ::umask(0);
  const bool created = create_key_file(path, key, &error);
  ::umask(old_umask);
  REQUIRE_MESSAGE(created, error);
  CHECK(file_mode(path) == 0600);
  CHECK(read_bytes(path) == base64_encode(key) + "\n");
  CHECK_FALSE(fs::exists(path + ".tmp" + std::to_string(::getpid())));
  bool missing = true;
  CHECK(read_key_file(path, &missing, &error) == std::optional<std::string>(key));
  CHECK_FALSE(missing);

  // Never overwritten.
  CHECK_FALSE(create_key_file(path, random_bytes(32), &error));
  CHECK(read_key_file(path, &missing, &error) == std::optional<std::string>(key));

  for (mode_t mode : {0640, 0604, 0660, 0644}) {
    CAPTURE(mode);
    REQUIRE(::chmod(path.c_str(), mode) == 0);
    CHECK_FALSE(read_key_file(path, &missing, &error));
    CHECK(contains(error, "chmod 600 " + path));
    CHECK(error.find('\n') == std::string::npos);
  }
  REQUIRE(::chmod(path.c_str(), 0400) == 0);
  CHECK(read_key_file(path, &missing, &error));

  CHECK_FALSE(read_key_file(dir.file("none"), &missing, &error));
  CHECK(missing);

  std::ofstream(dir.file("short")) << base64_encode(random_bytes(16)) << "\n";
  ::chmod(dir.file("short").c_str(), 0600);
  CHECK_FALSE(read_key_file(dir.file("short"), &missing, &error));
  CHECK_FALSE(missing);
  CHECK(contains(error, "does not hold base64 of a 32-byte key"));
}

TEST_CASE("open_with_master_key: the first start creates the key file, later starts use it") {
  TestStore store;
  const std::string location = store.location();
  const std::string key_file = key_file_of(store);
  const Config config = config_for(location, key_file);
  REQUIRE(config.master_key_file == key_file);
  std::vector<std::string> notes;
  std::string error;
  Fixture f;
  {
    auto db = open_with_master_key(config, 2, &notes, &error);
    REQUIRE_MESSAGE(db, error);
    REQUIRE(notes.size() == 1);
    CHECK(contains(notes[0], "created the master key file " + key_file));
    CHECK(file_mode(key_file) == 0600);
    f = fill(*db);
  }
  notes.clear();
  auto db = open_with_master_key(config, 2, &notes, &error);
  REQUIRE_MESSAGE(db, error);
  CHECK(notes.empty());
  check_keys(*db, f);
  check_sealed_at_rest(*db, f);
  db.reset();

  // The key file's key, given as HERALD_MASTER_KEY instead, opens the same database.
  bool missing = false;
  const auto key = read_key_file(key_file, &missing, &error);
  REQUIRE(key);
  db = open_with_master_key(config_for(location, key_file, *key), 1, &notes, &error);
  REQUIRE_MESSAGE(db, error);
  db.reset();

  // Another HERALD_MASTER_KEY: a one-line error naming it.
  CHECK_FALSE(
      open_with_master_key(config_for(location, key_file, random_bytes(32)), 1, &notes, &error));
  CHECK(error == "HERALD_MASTER_KEY does not match the database " + describe_location(location) +
                     ": its secrets were sealed with another master key");

  // The key file gone: refused, and no new key is made up.
  const std::string moved = store.dir().file("moved");
  fs::rename(key_file, moved);
  CHECK_FALSE(open_with_master_key(config, 1, &notes, &error));
  CHECK(contains(error, "does not exist"));
  CHECK_FALSE(fs::exists(key_file));

  // Another key in the file.
  std::string ignored;
  REQUIRE(create_key_file(key_file, random_bytes(32), &ignored));
  CHECK_FALSE(open_with_master_key(config, 1, &notes, &error));
  CHECK(contains(error, "the master key in " + key_file + " does not match"));

  // Group-readable: refused before anything is opened.
  fs::remove(key_file);
  fs::rename(moved, key_file);
  ::chmod(key_file.c_str(), 0640);
  CHECK_FALSE(open_with_master_key(config, 1, &notes, &error));
  CHECK(contains(error, "has mode 0640"));
}

TEST_CASE("open_with_master_key finishes a rotation interrupted after its commit") {
  TestStore store;
  const Config config = config_for(store.location(), key_file_of(store));
  const std::string pending = config.master_key_file + ".new";
  std::vector<std::string> notes;
  std::string error;
  Fixture f;
  const std::string new_key = random_bytes(32);
  {
    auto db = open_with_master_key(config, 1, &notes, &error);
    REQUIRE_MESSAGE(db, error);
    f = fill(*db);
    // What rotate does, up to its commit: the new key file first, then the re-seal.
    REQUIRE(create_key_file(pending, new_key, &error));
    reseal_all(*db, SecretBox(new_key));
  }
  notes.clear();
  auto db = open_with_master_key(config, 1, &notes, &error);
  REQUIRE_MESSAGE(db, error);
  REQUIRE(notes.size() == 1);
  CHECK(contains(notes[0], "finished an interrupted master key rotation"));
  CHECK_FALSE(fs::exists(pending));
  bool missing = false;
  CHECK(read_key_file(config.master_key_file, &missing, &error) ==
        std::optional<std::string>(new_key));
  check_keys(*db, f);
}

TEST_CASE("open_with_master_key drops the new key of a rotation that never committed") {
  TestStore store;
  const Config config = config_for(store.location(), key_file_of(store));
  const std::string pending = config.master_key_file + ".new";
  std::vector<std::string> notes;
  std::string error;
  Fixture f;
  {
    auto db = open_with_master_key(config, 1, &notes, &error);
    REQUIRE_MESSAGE(db, error);
    f = fill(*db);
  }
  const std::string before = read_bytes(config.master_key_file);
  REQUIRE(create_key_file(pending, random_bytes(32), &error));
  notes.clear();
  auto db = open_with_master_key(config, 1, &notes, &error);
  REQUIRE_MESSAGE(db, error);
  REQUIRE(notes.size() == 1);
  CHECK(contains(notes[0], "removed " + pending));
  CHECK_FALSE(fs::exists(pending));
  CHECK(read_bytes(config.master_key_file) == before);
  check_keys(*db, f);
}

// ---------------------------------------------------------------------------------------------
// herald master-key rotate

TEST_CASE("herald master-key rotate with a key file") {
  TestStore store;
  const std::string location = store.location();
  const std::string key_file = key_file_of(store);
  const Config config = config_for(location, key_file);
  std::vector<std::string> notes;
  std::string error;
  Fixture f;
  std::map<std::string, std::vector<StoredKey>> before;
  {
    auto db = open_with_master_key(config, 1, &notes, &error);
    REQUIRE_MESSAGE(db, error);
    f = fill(*db);
    before = stored(*db, f);
  }
  bool missing = false;
  const auto old_key = read_key_file(key_file, &missing, &error);
  REQUIRE(old_key);
  int status = 0;
  std::string out, err;
  {
    Capture cap;
    status =
        master_key_command({"rotate", "--db", location, "--master-key-file", key_file}, env_of({}));
    out = cap.out();
    err = cap.err();
  }
  CHECK_MESSAGE(status == 0, err);
  CHECK(out.empty());  // the key stays in the file
  CHECK(contains(err, "re-sealed " + std::to_string(kFixtureKeys) + " endpoint secrets"));
  CHECK_FALSE(fs::exists(key_file + ".new"));
  CHECK(file_mode(key_file) == 0600);
  const auto new_key = read_key_file(key_file, &missing, &error);
  REQUIRE(new_key);
  CHECK(*new_key != *old_key);
  CHECK_THROWS_AS(store.open(1, box_of(*old_key)), MasterKeyMismatch);
  {
    auto db = store.open(1, box_of(*new_key));
    check_keys(*db, f);
    check_sealed_at_rest(*db, f);
    for (const auto& [id, keys] : stored(*db, f)) {
      for (size_t i = 0; i < keys.size(); ++i) CHECK(keys[i].bytes != before.at(id).at(i).bytes);
    }
  }

  // Usage errors.
  Capture cap;
  CHECK(master_key_command({"rotate", "--listen", "x"}, env_of({})) == 2);
  CHECK(master_key_command({"spin"}, env_of({})) == 2);
  CHECK(master_key_command({"rotate", "--db", store.dir().file("none.db")}, env_of({})) == 1);
  CHECK_FALSE(fs::exists(store.dir().file("none.db")));
  CHECK(master_key_command({"--help"}, env_of({})) == 0);
}

TEST_CASE("herald master-key rotate with HERALD_MASTER_KEY prints the new key once") {
  TestStore store;
  const std::string location = store.location();
  const std::string key_file = key_file_of(store);
  const std::string old_key = random_bytes(32);
  Fixture f;
  {
    auto db = store.open(1, box_of(old_key));
    f = fill(*db);
  }
  const auto env = env_of({{"HERALD_DB", location},
                           {"HERALD_MASTER_KEY", base64_encode(old_key)},
                           {"HERALD_MASTER_KEY_FILE", key_file}});
  int status = 0;
  std::string out, err;
  {
    Capture cap;
    status = master_key_command({"rotate"}, env);
    out = cap.out();
    err = cap.err();
  }
  REQUIRE_MESSAGE(status == 0, err);
  CHECK(contains(err, "set HERALD_MASTER_KEY"));
  REQUIRE(out.size() == 45);
  const auto new_key = base64_decode(out.substr(0, 44));
  REQUIRE(new_key);
  CHECK_FALSE(fs::exists(key_file));  // no key file appears
  CHECK_THROWS_AS(store.open(1, box_of(old_key)), MasterKeyMismatch);
  {
    auto db = store.open(1, box_of(*new_key));
    check_keys(*db, f);
  }

  // The wrong current key: refused, nothing printed, nothing changed.
  Capture cap;
  CHECK(master_key_command({"rotate"}, env) == 1);
  CHECK(cap.out().empty());
  CHECK(contains(cap.err(), "HERALD_MASTER_KEY does not match"));
  auto db = store.open(1, box_of(*new_key));
  check_keys(*db, f);
}

// ---------------------------------------------------------------------------------------------
// herald token

TEST_CASE("herald token create, list, revoke") {
  TestStore store;
  const std::string location = store.location();
  ManualClock clock(1'700'000'000'000);
  std::string app_a;
  {
    auto db = store.open(1);
    app_a = test::add_app(*db->session(), clock.now_ms(), "app-a", "app-a").id;
  }
  const auto env = env_of({{"HERALD_DB", location}});
  const auto run = [&](std::vector<std::string> args, std::string* out, std::string* err) {
    Capture cap;
    const int status = token_command(args, env, clock);
    *out = cap.out();
    *err = cap.err();
    return status;
  };
  const auto find = [&](const std::string& token) {
    return store.open(1)->session()->tokens().find_by_hash(sha256(token));
  };
  std::string out, err;

  // An app-scoped token, by the app's uid, expiring in an hour.
  REQUIRE(run({"create", "--app", "app-a", "--expires", "1h", "--name", "portal"}, &out, &err) ==
          0);
  const std::string scoped = out.substr(0, out.size() - 1);
  CHECK(out == scoped + "\n");
  CHECK(scoped.starts_with("ak_"));
  // An admin token, via --db.
  REQUIRE(run({"create", "--db", location}, &out, &err) == 0);
  const std::string admin = out.substr(0, out.size() - 1);
  CHECK(admin.starts_with("sk_"));

  const auto scoped_rec = find(scoped);
  const auto admin_rec = find(admin);
  REQUIRE(scoped_rec);
  REQUIRE(admin_rec);
  CHECK(scoped_rec->app_id == std::optional<std::string>(app_a));
  CHECK(scoped_rec->expires_at == std::optional<TimeMs>(clock.now_ms() + 3'600'000));
  CHECK(scoped_rec->name == "portal");
  CHECK_FALSE(admin_rec->app_id);
  CHECK_FALSE(admin_rec->expires_at);

  // The list shows ids and scopes, never a token or its hash.
  REQUIRE(run({"list"}, &out, &err) == 0);
  CHECK(contains(out, scoped_rec->id));
  CHECK(contains(out, admin_rec->id));
  CHECK(contains(out, app_a));
  CHECK(contains(out, "portal"));
  CHECK(contains(out, "admin"));
  CHECK_FALSE(contains(out, scoped));
  CHECK_FALSE(contains(out, admin));
  CHECK_FALSE(contains(out, scoped.substr(3, 16)));
  CHECK_FALSE(contains(out, hex_encode(sha256(scoped)).substr(0, 16)));
  CHECK_FALSE(contains(out, "expired"));
  clock.advance(3'600'000);
  REQUIRE(run({"list"}, &out, &err) == 0);
  CHECK(contains(out, "(expired)"));

  // Revoke.
  REQUIRE(run({"revoke", scoped_rec->id}, &out, &err) == 0);
  CHECK_FALSE(find(scoped));
  CHECK(find(admin));
  CHECK(run({"revoke", scoped_rec->id}, &out, &err) == 1);
  CHECK(contains(err, "no token"));

  // Errors: one line each, non-zero.
  CHECK(run({"create", "--app", "no-such-app"}, &out, &err) == 1);
  CHECK(err == "herald: no application 'no-such-app'\n");
  CHECK(run({"create", "--expires", "soon"}, &out, &err) == 2);
  CHECK(run({"create", "--bogus", "x"}, &out, &err) == 2);
  CHECK(run({"revoke"}, &out, &err) == 2);
  CHECK(run({"frobnicate"}, &out, &err) == 2);
  CHECK(run({"list", "--db", store.dir().file("none.db")}, &out, &err) == 1);
  CHECK(contains(err, "no database at"));
  CHECK_FALSE(fs::exists(store.dir().file("none.db")));
  CHECK(run({"create", "--help"}, &out, &err) == 0);
  CHECK(contains(out, "Usage: herald token"));
}

// ---------------------------------------------------------------------------------------------
// SQLite files: what a copy of one holds

TEST_SUITE("sqlite") {
  TEST_CASE("a SQLite database copied without its key reveals no endpoint secret") {
    TempDir dir;
    std::string key;
    const std::string path = dir.file("herald.db");
    auto db = open_sqlite(path, 2, new_box(&key));
    const Fixture f = fill(*db);
    check_keys(*db, f);

    // The control: the same data in plaintext is found by the same search.
    {
      auto plain = open_sqlite(dir.file("plain.db"), 1);
      const Fixture pf = fill(*plain);
      const std::string plain_bytes = db_bytes(dir.file("plain.db"));
      for (const auto& k : all_keys(pf)) CHECK(contains(plain_bytes, k));
    }

    // A copy taken while herald runs: the file and its WAL, no key.
    copy_db(path, dir.file("copy.db"));
    const std::string bytes = db_bytes(dir.file("copy.db"));
    REQUIRE(bytes.size() > 4096);
    for (const auto& k : all_keys(f)) {
      for (const auto& form : leak_forms(k)) CHECK_FALSE(contains(bytes, form));
    }
    CHECK_FALSE(contains(bytes, key));
    CHECK_FALSE(contains(bytes, base64_encode(key)));

    // The copy is a whole database: refused with a wrong key, whole with the right one.
    CHECK_THROWS_AS(open_sqlite(dir.file("copy.db"), 1, new_box()), MasterKeyMismatch);
    auto copy = open_sqlite(dir.file("copy.db"), 1, box_of(key));
    check_keys(*copy, f);
  }

  TEST_CASE(
      "plaintext secrets of a database from before sealing are sealed on the first keyed open") {
    TempDir dir;
    const std::string path = dir.file("v2.db");
    const TimeMs now = now_ms();
    const std::string app_id = new_id(kAppPrefix, now);
    const std::vector<std::string> ids = {new_id(kEndpointPrefix, now),
                                          new_id(kEndpointPrefix, now)};
    const std::vector<std::string> keys = {random_bytes(32), random_bytes(24)};
    const std::string deleted_key = random_bytes(32);
    {
      // A database at version 2, made by the migrations themselves: a trigger stops migrate()
      // when it records version 3, which rolls migration 3 back.
      sqlite::Connection c(path);
      // As SQLite builds without SQLITE_SECURE_DELETE leave it: deleted bytes linger.
      c.exec("PRAGMA secure_delete = OFF");
      c.exec(
          "CREATE TABLE schema_version (version INTEGER NOT NULL);"
          "CREATE TRIGGER stop_after_v2 BEFORE INSERT ON schema_version WHEN NEW.version > 2 "
          "BEGIN SELECT RAISE(ABORT, 'stop after version 2'); END;");
      CHECK_THROWS_AS(sqlite::migrate(c), DbError);
      c.exec("DROP TRIGGER stop_after_v2");
      REQUIRE(scalar(c, "SELECT max(version) FROM schema_version") == 2);
      c.prepare(
           "INSERT INTO applications (id, uid, name, created_at, updated_at) "
           "VALUES (?, 'old', 'old', ?, ?)")
          .bind(1, app_id)
          .bind(2, now)
          .bind(3, now)
          .run();
      for (size_t i = 0; i < ids.size(); ++i) {
        c.prepare(
             "INSERT INTO endpoints (id, app_id, url, created_at, updated_at) "
             "VALUES (?, ?, 'https://example.com', ?, ?)")
            .bind(1, ids[i])
            .bind(2, app_id)
            .bind(3, now)
            .bind(4, now)
            .run();
        c.prepare("INSERT INTO endpoint_secrets (endpoint_id, key, created_at) VALUES (?, ?, ?)")
            .bind(1, ids[i])
            .bind_blob(2, keys[i])
            .bind(3, now)
            .run();
      }
      // Secrets deleted before the upgrade, pages of them: their bytes linger in free pages.
      for (int i = 0; i < 300; ++i) {
        c.prepare("INSERT INTO endpoint_secrets (endpoint_id, key, created_at) VALUES (?, ?, ?)")
            .bind(1, ids[0])
            .bind_blob(2, i == 150 ? deleted_key : random_bytes(32))
            .bind(3, now - 1)
            .run();
      }
      c.prepare("DELETE FROM endpoint_secrets WHERE created_at = ?").bind(1, now - 1).run();
      c.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    REQUIRE(contains(db_bytes(path), keys[0]));  // the control: the search finds plaintext
    REQUIRE(contains(db_bytes(path), deleted_key));

    std::string master;
    {
      auto db = open_sqlite(path, 2, new_box(&master));
      sqlite::Connection c(path);
      CHECK(scalar(c, "SELECT max(version) FROM schema_version") ==
            sqlite::latest_schema_version());
      CHECK(scalar(c, "SELECT count(*) FROM endpoint_secrets WHERE sealed = 1") == 2);
      CHECK(scalar(c, "SELECT count(*) FROM endpoint_secrets WHERE sealed = 0") == 0);
      auto s = db->session();
      for (size_t i = 0; i < ids.size(); ++i) {
        CHECK(s->endpoints().current_key(ids[i]) == test::opt_hmac_key(keys[i]));
      }
      const std::string bytes = db_bytes(path);
      for (const auto& k : {keys[0], keys[1], deleted_key}) {
        for (const auto& form : leak_forms(k)) CHECK_FALSE(contains(bytes, form));
      }
    }
    // Opening again seals nothing more and reads the same keys.
    auto again = open_sqlite(path, 1, box_of(master));
    CHECK(again->session()->endpoints().current_key(ids[1]) == test::opt_hmac_key(keys[1]));
  }

  TEST_CASE("a rotation leaves nothing sealed with the old key in the file or its WAL") {
    TempDir dir;
    const std::string path = dir.file("h.db");
    std::string old_key;
    auto db = open_sqlite(path, 1, new_box(&old_key));
    const Fixture f = fill(*db);
    std::vector<std::string> old_sealed;
    for (const auto& [id, keys] : stored(*db, f)) {
      for (const auto& k : keys) old_sealed.push_back(k.bytes.substr(1, 28));
    }
    REQUIRE(old_sealed.size() == kFixtureKeys);
    // How many of them a copy taken now (the file and its WAL) would hold.
    const auto lingering = [&] {
      const std::string bytes = db_bytes(path);
      int n = 0;
      for (const auto& sealed : old_sealed) n += contains(bytes, sealed) ? 1 : 0;
      return n;
    };
    REQUIRE(lingering() == kFixtureKeys);  // the control: the search finds them

    std::string new_key;
    SUBCASE("reseal_all, then Database::scrub") {
      new_key = random_bytes(32);
      CHECK(reseal_all(*db, SecretBox(new_key)) == kFixtureKeys);
      REQUIRE(lingering() > 0);  // re-sealed, but the old values are still in the file or WAL
      db->scrub();
    }
    SUBCASE("herald master-key rotate, while another connection keeps the WAL open") {
      Capture cap;
      REQUIRE(master_key_command({"rotate"}, env_of({{"HERALD_DB", path},
                                                     {"HERALD_MASTER_KEY", base64_encode(old_key)},
                                                     {"HERALD_MASTER_KEY_FILE", path + ".key"}})) ==
              0);
      REQUIRE(cap.out().size() == 45);
      new_key = base64_decode(cap.out().substr(0, 44)).value_or("");
    }
    SUBCASE("herald master-key rotate with the key file next to the database") {
      std::string error;
      REQUIRE(create_key_file(path + ".key", old_key, &error));
      Capture cap;
      REQUIRE(master_key_command({"rotate", "--db", path}, env_of({})) == 0);
      bool missing = false;
      new_key = read_key_file(path + ".key", &missing, &error).value_or("");
    }
    CHECK(lingering() == 0);
    db.reset();
    auto reopened = open_sqlite(path, 1, box_of(new_key));
    check_keys(*reopened, f);
  }
}
