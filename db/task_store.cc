#include "db/task_store.h"

namespace herald {

const char* task_status_text(TaskStatus s) {
  switch (s) {
    case TaskStatus::kRunning:
      return "running";
    case TaskStatus::kFinished:
      return "finished";
    case TaskStatus::kFailed:
      return "failed";
  }
  return "running";
}

std::optional<TaskStatus> parse_task_status(std::string_view text) {
  for (TaskStatus s : {TaskStatus::kRunning, TaskStatus::kFinished, TaskStatus::kFailed}) {
    if (text == task_status_text(s)) return s;
  }
  return std::nullopt;
}

}  // namespace herald
