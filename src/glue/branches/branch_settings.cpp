#include "glue/branches/branch_settings.hpp"

#include "core/error.hpp"
#include "glue/guard.hpp"

extern "C" {
#include "utils/guc_tables.h"
}

namespace abtest::glue::branch_settings {
namespace {

std::string Where(const std::string& experiment, const std::string& branch) {
  return "branch " + Quoted(branch) + " of experiment " + Quoted(experiment);
}

// PostgreSQL's definition of the parameter, or nullptr when there is none (a custom
// "prefix.name" may have none, or a placeholder, until a module defines it).
const config_generic* Definition(const std::string& name) {
  config_generic** variables = get_guc_variables();
  int count = GetNumConfigOptions();
  for (int i = 0; i < count; ++i)
    if (pg_strcasecmp(variables[i]->name, name.c_str()) == 0) return variables[i];
  return nullptr;
}

void RequireSettable(const BranchSetting& setting, const std::string& where) {
  const config_generic* definition = Definition(setting.name);
  if (definition == nullptr || (definition->flags & GUC_CUSTOM_PLACEHOLDER)) {
    if (setting.name.find('.') != std::string::npos) return;  // a custom placeholder: any session may set it
    throw Error(ErrorKind::kUndefinedObject,
                "unrecognized configuration parameter " + Quoted(setting.name) + " for " + where, {},
                "Name a parameter of SHOW ALL, or a custom one with a dot, such as \"myapp.variant\".");
  }
  if (definition->flags & GUC_NO_SHOW_ALL)
    throw Error(ErrorKind::kCantChangeParameter,
                "parameter " + Quoted(setting.name) + " cannot be a setting of " + where);
  if (definition->context == PGC_SUSET)
    throw Error(ErrorKind::kInsufficientPrivilege,
                "parameter " + Quoted(setting.name) + " cannot be a setting of " + where,
                "Only a superuser or a role granted SET on it may change it, and any role may enter a branch.",
                "Choose a parameter an ordinary session may SET (context \"user\" in pg_settings).");
  if (definition->context != PGC_USERSET)
    throw Error(ErrorKind::kCantChangeParameter,
                "parameter " + Quoted(setting.name) + " cannot be a setting of " + where,
                "It cannot be changed within a session (context \"" +
                    std::string(GucContext_Names[definition->context]) + "\" in pg_settings).",
                "Choose a parameter an ordinary session may SET (context \"user\" in pg_settings).");
}

// Runs set_config_option; its error keeps PostgreSQL's SQLSTATE and its own words
// as the detail, under a message that names the branch.
void SetConfig(const BranchSetting& setting, const std::string& where, GucContext context, bool change) {
  const char* name = setting.name.c_str();
  const char* value = setting.value.c_str();
  try {
    PgCall([&] {
      (void)set_config_option(name, value, context, PGC_S_SESSION, GUC_ACTION_LOCAL, change, ERROR, false);
    });
  } catch (const PgError& error) {
    std::string message = std::string(change ? "cannot apply setting " : "invalid setting ") +
                          Quoted(setting.name) + " = " + Quoted(setting.value) + " of " + where;
    ErrorData* data = error.data();
    char* original = data->message;
    data->message = PgCall([&] { return pstrdup(message.c_str()); });
    data->detail = original;
    throw;
  }
}

}  // namespace

void Validate(const BranchSettings& settings, const std::string& experiment, const std::string& branch) {
  const std::string where = Where(experiment, branch);
  for (const BranchSetting& setting : settings) {
    RequireSettable(setting, where);
    SetConfig(setting, where, PGC_USERSET, false);
  }
}

void ApplyLocally(const BranchSettings& settings, const std::string& experiment, const std::string& branch) {
  if (settings.empty()) return;
  const std::string where = Where(experiment, branch);
  GucContext context = superuser() ? PGC_SUSET : PGC_USERSET;  // as SET itself decides
  for (const BranchSetting& setting : settings) SetConfig(setting, where, context, true);
}

}  // namespace abtest::glue::branch_settings
