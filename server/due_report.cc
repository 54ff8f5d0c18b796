#include "server/due_report.h"

#include <algorithm>
#include <map>

#include "core/division_code.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"

namespace caselink::server {
namespace {

constexpr absl::Duration kChildTimeout = absl::Seconds(5);

bool IsBelow(const std::string& code, const std::string& self) {
  return code != self &&
         std::string_view(code).starts_with(SignificantPrefix(self));
}

}  // namespace

absl::StatusOr<v1::ListDueResponse> ReportDue(
    const CaseLedger& ledger, const LinkSet& links, const std::string& self,
    absl::Time now, absl::Duration within, bool subtree) {
  CASELINK_ASSIGN_OR_RETURN(std::vector<v1::DueItem> own,
                            ledger.ListDue(now, within));
  v1::ListDueResponse response;
  std::vector<v1::DueItem> items = std::move(own);
  if (subtree) {
    v1::ListDueRequest request;
    request.set_within_seconds(
        static_cast<uint64_t>(absl::ToInt64Seconds(within)));
    request.set_subtree(true);
    for (PeerLink* link : links.All()) {
      if (!IsBelow(link->code(), self)) continue;
      auto answer = link->ListDue(request, kChildTimeout);
      if (!answer.ok()) {
        response.add_unreachable(
            Cat(link->code(), ": ", View(answer.status().message())));
        continue;
      }
      for (v1::DueItem& item : *answer->mutable_items()) {
        items.push_back(std::move(item));
      }
      for (const std::string& missing : answer->unreachable()) {
        response.add_unreachable(missing);
      }
    }
  }

  // One entry per (id, stage), preferring the report of the node that must
  // act, whose copy is the one that decides.
  std::map<std::pair<std::string, std::string>, v1::DueItem> unique;
  for (v1::DueItem& item : items) {
    auto key = std::make_pair(item.id(), item.stage());
    auto it = unique.find(key);
    if (it == unique.end()) {
      unique.emplace(key, std::move(item));
    } else if (item.reported_by() == item.owner()) {
      it->second = std::move(item);
    }
  }
  std::vector<v1::DueItem> sorted;
  for (auto& [key, item] : unique) sorted.push_back(std::move(item));
  using google::protobuf::util::TimeUtil;
  std::sort(sorted.begin(), sorted.end(),
            [](const v1::DueItem& a, const v1::DueItem& b) {
              if (a.overdue() != b.overdue()) return a.overdue();
              return TimeUtil::TimestampToMicroseconds(a.due()) <
                     TimeUtil::TimestampToMicroseconds(b.due());
            });
  for (v1::DueItem& item : sorted) *response.add_items() = std::move(item);
  return response;
}

}  // namespace caselink::server
