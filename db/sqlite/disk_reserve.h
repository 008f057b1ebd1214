#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace herald::sqlite {

// Room kept back on the filesystem of a SQLite database, so that when the disk fills the
// deliveries already accepted can still be sent and recorded: a ballast file of `bytes` beside
// the database. A thread looks at the free space every 200 ms. When less than `bytes` is left
// the ballast is deleted, giving its space to the writes that record deliveries, and intake
// pauses (new messages are refused: their payloads would eat that space). Once at least twice
// `bytes` is free again the ballast is made anew and intake resumes. Thread-safe.
class DiskReserve {
 public:
  // Makes the ballast `path` (or keeps one an earlier run left) if there is room for it.
  DiskReserve(std::string path, uint64_t bytes);
  ~DiskReserve();
  DiskReserve(const DiskReserve&) = delete;
  DiskReserve& operator=(const DiskReserve&) = delete;

  // True while intake is paused for want of space.
  bool paused() const { return paused_.load(); }
  // Looks at the free space now (the thread does every 200 ms).
  void check();

 private:
  void run();
  bool make_ballast();

  const std::string path_;
  const uint64_t bytes_;
  std::atomic<bool> paused_{false};
  std::mutex mu_;  // serializes check(); guards stop_
  std::condition_variable cv_;
  bool stop_ = false;
  bool have_ballast_ = false;  // REQUIRES: mu_ held
  std::thread thread_;
};

}  // namespace herald::sqlite
