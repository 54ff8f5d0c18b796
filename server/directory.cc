#include "server/directory.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "caselink/store/v1/records.pb.h"
#include "core/config_file.h"
#include "core/division_code.h"
#include "core/identity.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"

namespace caselink::server {
namespace {

using storage::Family;

constexpr std::string_view kSignedContext("caselink/v1/directory\0", 22);
constexpr std::string_view kDocumentPrefix = "d/";
constexpr std::string_view kSealingPrefix = "s/";

// The identity a certificate names, required to be the node `code`.
absl::Status RequireNodeCertificate(const Certificate& cert,
                                    std::string_view code) {
  auto identity = IdentityFromUris(cert.uri_sans());
  if (!identity.ok() || identity->role != Role::kNode ||
      identity->code != code) {
    return absl::PermissionDeniedError(
        Cat("certificate ", cert.subject(), " does not name node ", code));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(Cat(path, ": cannot be read"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The nodes a province's directory file lists, with their certificates
// read in.
absl::StatusOr<std::vector<v1::DirectoryNode>> ReadNodeList(
    const std::string& path) {
  CASELINK_ASSIGN_OR_RETURN(ConfigSection top, ConfigSection::ParseFile(path));
  CASELINK_RETURN_IF_ERROR(top.AllowOnly({"nodes"}));
  std::vector<v1::DirectoryNode> nodes;
  CASELINK_RETURN_IF_ERROR(
      top.ForEachInList("nodes", [&](const ConfigSection& entry) {
        CASELINK_RETURN_IF_ERROR(
            entry.AllowOnly({"code", "name", "address", "parent", "links",
                             "signing_certificates", "sealing_certificate"}));
        v1::DirectoryNode node;
        auto code =
            [&](std::string_view key,
                const std::string& text) -> absl::StatusOr<std::string> {
          auto normalized = NormalizeDivisionCode(text);
          if (!normalized.ok()) {
            return entry.Error(key, View(normalized.status().message()));
          }
          return *normalized;
        };
        CASELINK_ASSIGN_OR_RETURN(std::string text,
                                  entry.RequiredString("code"));
        CASELINK_ASSIGN_OR_RETURN(*node.mutable_code(), code("code", text));
        CASELINK_ASSIGN_OR_RETURN(*node.mutable_name(),
                                  entry.RequiredString("name"));
        CASELINK_ASSIGN_OR_RETURN(*node.mutable_address(),
                                  entry.RequiredString("address"));
        CASELINK_ASSIGN_OR_RETURN(auto parent, entry.OptionalString("parent"));
        if (parent.has_value() && !parent->empty()) {
          CASELINK_ASSIGN_OR_RETURN(*node.mutable_parent(),
                                    code("parent", *parent));
        }
        CASELINK_ASSIGN_OR_RETURN(auto links, entry.StringList("links"));
        for (const std::string& link : links) {
          CASELINK_ASSIGN_OR_RETURN(*node.add_links(), code("links", link));
        }
        CASELINK_ASSIGN_OR_RETURN(auto signing,
                                  entry.PathList("signing_certificates"));
        if (signing.empty()) {
          return entry.Error("signing_certificates", "missing");
        }
        for (const std::string& file : signing) {
          auto pem = ReadText(file);
          if (!pem.ok()) {
            return entry.Error("signing_certificates",
                               View(pem.status().message()));
          }
          node.add_signing_certificates(*pem);
        }
        CASELINK_ASSIGN_OR_RETURN(auto sealing,
                                  entry.OptionalPath("sealing_certificate"));
        if (sealing.has_value()) {
          auto pem = ReadText(*sealing);
          if (!pem.ok()) {
            return entry.Error("sealing_certificate",
                               View(pem.status().message()));
          }
          node.set_sealing_certificate(*pem);
        }
        nodes.push_back(std::move(node));
        return absl::OkStatus();
      }));
  return nodes;
}

}  // namespace

absl::Status Directory::Load() {
  std::vector<v1::SignedDirectory> documents;
  absl::Status corrupt;
  CASELINK_RETURN_IF_ERROR(store_->Scan(
      Family::kMeta, kDocumentPrefix,
      [&](std::string_view /*key*/, std::string_view value) {
        v1::SignedDirectory document;
        if (!document.ParseFromArray(value.data(),
                                     static_cast<int>(value.size()))) {
          corrupt = absl::DataLossError("a stored directory is corrupt");
          return false;
        }
        documents.push_back(std::move(document));
        return true;
      }));
  CASELINK_RETURN_IF_ERROR(corrupt);
  for (const v1::SignedDirectory& document : documents) {
    v1::Directory directory;
    CASELINK_RETURN_IF_ERROR(Check(document, &directory));
    absl::MutexLock lock(&mu_);
    signed_[directory.province()] = document;
    parsed_[directory.province()] = directory;
  }

  std::vector<std::pair<std::string, std::string>> sealing;
  CASELINK_RETURN_IF_ERROR(store_->Scan(
      Family::kMeta, kSealingPrefix,
      [&](std::string_view key, std::string_view value) {
        sealing.emplace_back(key.substr(kSealingPrefix.size()), value);
        return true;
      }));
  for (const auto& [code, pem] : sealing) {
    CASELINK_ASSIGN_OR_RETURN(SealingPublicKey key,
                              SealingPublicKey::FromCertificatePem(pem));
    absl::MutexLock lock(&mu_);
    sealing_.insert_or_assign(code, key);
  }
  return absl::OkStatus();
}

absl::Status Directory::Check(const v1::SignedDirectory& signed_directory,
                              v1::Directory* directory) const {
  if (!directory->ParseFromString(signed_directory.directory())) {
    return absl::InvalidArgumentError("directory does not parse");
  }
  const std::string& province = directory->province();
  auto normalized = NormalizeDivisionCode(province);
  if (!normalized.ok() || *normalized != province ||
      LevelOf(province) != DivisionLevel::kProvince) {
    return absl::InvalidArgumentError(
        Cat("directory names \"", province, "\" as its province"));
  }
  CASELINK_ASSIGN_OR_RETURN(
      Certificate signer,
      Certificate::FromPem(signed_directory.signer_certificate()));
  CASELINK_RETURN_IF_ERROR(RequireNodeCertificate(signer, province));
  CASELINK_RETURN_IF_ERROR(trust_->VerifyChain(signer, signer.not_before()));
  CASELINK_ASSIGN_OR_RETURN(PublicKey key, signer.public_key());
  absl::Status verified =
      key.Verify(Cat(kSignedContext, signed_directory.directory()),
                 signed_directory.signature().value());
  if (!verified.ok()) {
    return absl::UnauthenticatedError(
        Cat("directory of ", province, " version ", directory->version(),
            " is not signed by ", province, ": ", View(verified.message())));
  }
  for (const v1::DirectoryNode& node : directory->nodes()) {
    if (ProvinceOf(node.code()) != province) {
      return absl::PermissionDeniedError(
          Cat("directory of ", province, " lists ", node.code(),
              ", which belongs to another province"));
    }
  }
  return absl::OkStatus();
}

absl::Status Directory::Apply(const v1::Directory& directory) {
  for (const v1::DirectoryNode& node : directory.nodes()) {
    for (const std::string& pem : node.signing_certificates()) {
      absl::Status learned = keys_->Learn(node.code(), pem);
      if (!learned.ok()) {
        log_->Warning("directory_certificate_refused",
                      {{"node", node.code()},
                       {"province", directory.province()},
                       {"error", learned.ToString()}});
      }
    }
    if (!node.sealing_certificate().empty()) {
      absl::Status learned =
          LearnSealingKey(node.code(), node.sealing_certificate());
      if (!learned.ok()) {
        log_->Warning("directory_certificate_refused",
                      {{"node", node.code()},
                       {"province", directory.province()},
                       {"error", learned.ToString()}});
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Directory::Take(
    const v1::SignedDirectory& signed_directory) {
  v1::Directory directory;
  CASELINK_RETURN_IF_ERROR(Check(signed_directory, &directory));
  {
    absl::MutexLock lock(&mu_);
    auto held = parsed_.find(directory.province());
    if (held != parsed_.end() &&
        held->second.version() >= directory.version()) {
      return false;
    }
  }
  CASELINK_RETURN_IF_ERROR(Apply(directory));
  storage::Batch batch = store_->NewBatch();
  batch.Put(Family::kMeta, Cat(kDocumentPrefix, directory.province()),
            signed_directory.SerializeAsString());
  CASELINK_RETURN_IF_ERROR(store_->Commit(batch));
  log_->Info("directory_taken", {{"province", directory.province()},
                                 {"version", Cat(directory.version())},
                                 {"nodes", Cat(directory.nodes_size())}});
  absl::MutexLock lock(&mu_);
  signed_[directory.province()] = signed_directory;
  parsed_[directory.province()] = std::move(directory);
  return true;
}

absl::StatusOr<bool> Directory::Publish(const std::string& path,
                                        const PrivateKey& key,
                                        const std::string& signer_pem) {
  CASELINK_ASSIGN_OR_RETURN(std::vector<v1::DirectoryNode> nodes,
                            ReadNodeList(path));
  v1::Directory next;
  next.set_province(self_);
  for (v1::DirectoryNode& node : nodes) *next.add_nodes() = std::move(node);
  uint64_t version = 1;
  {
    absl::MutexLock lock(&mu_);
    auto held = parsed_.find(self_);
    if (held != parsed_.end()) {
      v1::Directory same = held->second;
      same.clear_version();
      same.clear_issued_at();
      if (same.SerializeAsString() == next.SerializeAsString()) return false;
      version = held->second.version() + 1;
    }
  }
  next.set_version(version);
  *next.mutable_issued_at() =
      google::protobuf::util::TimeUtil::GetCurrentTime();

  v1::SignedDirectory document;
  document.set_directory(next.SerializeAsString());
  CASELINK_ASSIGN_OR_RETURN(
      std::string value, key.Sign(Cat(kSignedContext, document.directory())));
  v1::Signature* signature = document.mutable_signature();
  signature->set_algorithm(static_cast<v1::SignatureAlgorithm>(
      SignatureSchemeToProto(key.scheme())));
  signature->set_key_id(key.KeyId());
  signature->set_value(std::move(value));
  document.set_signer_certificate(signer_pem);
  CASELINK_ASSIGN_OR_RETURN(bool taken, Take(document));
  if (taken) {
    log_->Info("directory_published",
               {{"version", Cat(version)}, {"nodes", Cat(next.nodes_size())}});
  }
  return taken;
}

std::vector<v1::SignedDirectory> Directory::NewerThan(
    const std::map<std::string, uint64_t>& known) const {
  std::vector<v1::SignedDirectory> newer;
  absl::MutexLock lock(&mu_);
  for (const auto& [province, directory] : parsed_) {
    auto it = known.find(province);
    if (it == known.end() || it->second < directory.version()) {
      newer.push_back(signed_.at(province));
    }
  }
  return newer;
}

std::map<std::string, uint64_t> Directory::Versions() const {
  std::map<std::string, uint64_t> versions;
  absl::MutexLock lock(&mu_);
  for (const auto& [province, directory] : parsed_) {
    versions[province] = directory.version();
  }
  return versions;
}

absl::Status Directory::LearnSealingKey(std::string_view code,
                                        std::string_view pem) {
  CASELINK_ASSIGN_OR_RETURN(Certificate cert, Certificate::FromPem(pem));
  CASELINK_RETURN_IF_ERROR(RequireNodeCertificate(cert, code));
  CASELINK_RETURN_IF_ERROR(trust_->VerifyChain(cert));
  CASELINK_ASSIGN_OR_RETURN(SealingPublicKey key,
                            SealingPublicKey::FromCertificatePem(pem));
  {
    absl::MutexLock lock(&mu_);
    auto it = sealing_.find(std::string(code));
    if (it != sealing_.end() && it->second.KeyId() == key.KeyId()) {
      return absl::OkStatus();
    }
  }
  storage::Batch batch = store_->NewBatch();
  batch.Put(Family::kMeta, Cat(kSealingPrefix, code), pem);
  CASELINK_RETURN_IF_ERROR(store_->Commit(batch));
  absl::MutexLock lock(&mu_);
  sealing_.insert_or_assign(std::string(code), key);
  return absl::OkStatus();
}

absl::StatusOr<SealingPublicKey> Directory::SealingKeyOf(
    const std::string& code) const {
  absl::MutexLock lock(&mu_);
  auto it = sealing_.find(code);
  if (it == sealing_.end()) {
    return absl::FailedPreconditionError(
        Cat("no sealing key known for ", code,
            ": it is in no directory this node holds and has not linked "
            "with it"));
  }
  return it->second;
}

std::vector<DirectoryLink> Directory::LinksOf(const std::string& code) const {
  std::vector<DirectoryLink> links;
  std::set<std::string> seen;
  absl::MutexLock lock(&mu_);
  std::map<std::string, const v1::DirectoryNode*> by_code;
  for (const auto& [province, directory] : parsed_) {
    for (const v1::DirectoryNode& node : directory.nodes()) {
      by_code[node.code()] = &node;
    }
  }
  auto add = [&](const std::string& other) {
    auto it = by_code.find(other);
    if (other == code || it == by_code.end() || !seen.insert(other).second) {
      return;
    }
    links.push_back({other, it->second->address()});
  };
  auto self = by_code.find(code);
  if (self != by_code.end()) {
    add(self->second->parent());
    for (const std::string& link : self->second->links()) add(link);
  }
  for (const auto& [other, node] : by_code) {
    if (node->parent() == code) add(other);
    for (const std::string& link : node->links()) {
      if (link == code) add(other);
    }
  }
  return links;
}

absl::StatusOr<std::string> Directory::AddressOf(
    const std::string& code) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [province, directory] : parsed_) {
    for (const v1::DirectoryNode& node : directory.nodes()) {
      if (node.code() == code) return node.address();
    }
  }
  return absl::NotFoundError(Cat("no directory lists node ", code));
}

}  // namespace caselink::server
