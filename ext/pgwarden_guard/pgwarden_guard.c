/*
 * pgwarden_guard: keeps a managed server's administrator (CREATEROLE, not superuser) from
 * escalating to the operating system or to the platform's own roles.
 *
 * Before PostgreSQL 16 a CREATEROLE role may grant membership in any non-superuser role,
 * including pg_execute_server_program, pg_read_server_files and pg_write_server_files (the
 * operating system) and pg_read_all_data and pg_write_all_data (every table, pg_authid's
 * password verifiers included), and may alter, rename or drop any non-superuser role. This
 * library, loaded through shared_preload_libraries, hooks ProcessUtility and refuses, when the
 * current user is not a superuser:
 *   - granting or revoking a protected role, directly (GRANT/REVOKE, ALTER GROUP ... ADD/DROP
 *     USER) or through CREATE ROLE ... IN ROLE/IN GROUP; granting also refuses any role that
 *     already holds (directly or indirectly) one of those five roles;
 *   - changing the memberships of a protected role (GRANT x TO protected, CREATE ROLE x
 *     ROLE/USER/ADMIN protected, ALTER GROUP x ADD/DROP USER protected);
 *   - ALTER ROLE, ALTER ROLE ... SET, ALTER ROLE ... RENAME, DROP ROLE, DROP OWNED BY and
 *     REASSIGN OWNED BY on such a role, and CREATE ROLE / RENAME TO a "pgwarden_" name;
 *   - ALTER ROLE ... SET and ALTER DATABASE ... SET of the *_preload_libraries parameters.
 * Protected roles: the five roles above and every role whose name starts with "pgwarden_"
 * (case-insensitive). Superusers (the platform) are never restricted. Nothing is logged and
 * no SQL object is created.
 */
#include "postgres.h"

#include "catalog/pg_authid_d.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"

PG_MODULE_MAGIC;

#if PG_VERSION_NUM < 160000
void		_PG_init(void);
#endif

#define PLATFORM_ROLE_PREFIX "pgwarden_"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/*
 * The predefined roles that reach past what an administrator may see or change: the server's
 * files and programs (the operating system), and every table of every database, system catalogs
 * included (pg_read_all_data reads pg_authid: the SCRAM verifiers of every role, the platform's
 * maintenance superuser's too; pg_write_all_data writes any table whatever its owner). The other
 * predefined roles are left to the administrator: pg_monitor and pg_signal_backend are the
 * platform's grants to pgwarden_admin (signals never reach a superuser's backend),
 * pg_checkpoint only asks for a checkpoint, pg_database_owner has no explicit members.
 */
static const Oid escalation_roles[] = {
	ROLE_PG_EXECUTE_SERVER_PROGRAM,
	ROLE_PG_READ_SERVER_FILES,
	ROLE_PG_WRITE_SERVER_FILES,
	ROLE_PG_READ_ALL_DATA,
	ROLE_PG_WRITE_ALL_DATA,
};

static const char *const escalation_role_names[] = {
	"pg_execute_server_program",
	"pg_read_server_files",
	"pg_write_server_files",
	"pg_read_all_data",
	"pg_write_all_data",
};

static const char *const preload_parameters[] = {
	"session_preload_libraries",
	"local_preload_libraries",
	"shared_preload_libraries",
};

static bool
is_platform_role_name(const char *name)
{
	return name != NULL &&
		pg_strncasecmp(name, PLATFORM_ROLE_PREFIX, strlen(PLATFORM_ROLE_PREFIX)) == 0;
}

/* A role whose memberships and definition only the platform may change. */
static bool
is_protected_role(const char *name)
{
	size_t		i;

	if (name == NULL)
		return false;
	if (is_platform_role_name(name))
		return true;
	for (i = 0; i < lengthof(escalation_role_names); i++)
		if (strcmp(name, escalation_role_names[i]) == 0)
			return true;
	return false;
}

/*
 * A role that non-superusers may neither grant nor alter, rename or drop: a protected role, or
 * an existing role that holds (directly or through other roles) one of the escalation roles.
 */
static bool
is_guarded_role(const char *name)
{
	Oid			roleid;
	size_t		i;

	if (name == NULL)
		return false;
	if (is_protected_role(name))
		return true;
	roleid = get_role_oid(name, true);
	if (!OidIsValid(roleid))
		return false;
	for (i = 0; i < lengthof(escalation_roles); i++)
		if (is_member_of_role_nosuper(roleid, escalation_roles[i]))
			return true;
	return false;
}

/* The name a RoleSpec designates, or NULL for PUBLIC or an unknown current role. */
static const char *
rolespec_name(const RoleSpec *spec)
{
	if (spec == NULL)
		return NULL;
	switch (spec->roletype)
	{
		case ROLESPEC_CSTRING:
			return spec->rolename;
		case ROLESPEC_CURRENT_ROLE:
		case ROLESPEC_CURRENT_USER:
			return GetUserNameFromId(GetUserId(), true);
		case ROLESPEC_SESSION_USER:
			return GetUserNameFromId(GetSessionUserId(), true);
		case ROLESPEC_PUBLIC:
			return NULL;
	}
	return NULL;
}

static void
deny_grant(const char *granted, bool is_grant)
{
	if (is_grant)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to grant role \"%s\"", granted),
				 errdetail("Only the platform may grant membership in this role.")));
	else
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to revoke role \"%s\"", granted),
				 errdetail("Only the platform may revoke membership in this role.")));
}

static void
deny_member_change(const char *granted, const char *member, bool is_grant)
{
	if (is_grant)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to grant role \"%s\" to role \"%s\"", granted, member),
				 errdetail("Only the platform may change the memberships of role \"%s\".", member)));
	else
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to revoke role \"%s\" from role \"%s\"", granted, member),
				 errdetail("Only the platform may change the memberships of role \"%s\".", member)));
}

static void
deny_role_command(const char *verb, const char *role)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s role \"%s\"", verb, role),
			 errdetail("Only the platform may %s this role.", verb)));
}

static void
deny_reserved_name(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_RESERVED_NAME),
			 errmsg("role name \"%s\" is reserved", name),
			 errdetail("Role names starting with \"%s\" are reserved for the platform.",
					   PLATFORM_ROLE_PREFIX)));
}

/* Granting (or revoking) "granted" to each member of a RoleSpec list. */
static void
check_members(const char *granted, List *members, bool is_grant)
{
	ListCell   *lc;

	foreach(lc, members)
	{
		const char *member = rolespec_name(lfirst_node(RoleSpec, lc));

		if (is_protected_role(member))
			deny_member_change(granted, member, is_grant);
	}
}

static void
check_grantable(const char *granted, bool is_grant)
{
	if (is_grant ? is_guarded_role(granted) : is_protected_role(granted))
		deny_grant(granted, is_grant);
}

static void
check_parameter(const VariableSetStmt *setstmt)
{
	size_t		i;

	if (setstmt == NULL || setstmt->name == NULL)
		return;
	if (setstmt->kind != VAR_SET_VALUE && setstmt->kind != VAR_SET_CURRENT)
		return;					/* RESET and SET TO DEFAULT only remove a setting */
	for (i = 0; i < lengthof(preload_parameters); i++)
		if (pg_strcasecmp(setstmt->name, preload_parameters[i]) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to set parameter \"%s\"", setstmt->name),
					 errdetail("Only the platform may set this parameter.")));
}

static void
check_grant_role(const GrantRoleStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->granted_roles)
	{
		const AccessPriv *priv = lfirst_node(AccessPriv, lc);

		check_grantable(priv->priv_name, stmt->is_grant);
		check_members(priv->priv_name, stmt->grantee_roles, stmt->is_grant);
	}
}

static void
check_create_role(const CreateRoleStmt *stmt)
{
	ListCell   *lc;

	if (is_platform_role_name(stmt->role))
		deny_reserved_name(stmt->role);
	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst_node(DefElem, lc);

		if (strcmp(opt->defname, "addroleto") == 0)
		{
			/* IN ROLE / IN GROUP: the new role becomes a member of each listed role */
			ListCell   *rc;

			foreach(rc, (List *) opt->arg)
			{
				const char *granted = rolespec_name(lfirst_node(RoleSpec, rc));

				if (granted != NULL)
					check_grantable(granted, true);
			}
		}
		else if (strcmp(opt->defname, "rolemembers") == 0 ||
				 strcmp(opt->defname, "adminmembers") == 0)
		{
			/* ROLE / USER / ADMIN: each listed role becomes a member of the new role */
			check_members(stmt->role, (List *) opt->arg, true);
		}
	}
}

static void
check_alter_role(const AlterRoleStmt *stmt)
{
	const char *role = rolespec_name(stmt->role);
	ListCell   *lc;

	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst_node(DefElem, lc);

		/* ALTER GROUP role ADD|DROP USER members */
		if (strcmp(opt->defname, "rolemembers") == 0 && role != NULL)
		{
			check_grantable(role, stmt->action > 0);
			check_members(role, (List *) opt->arg, stmt->action > 0);
		}
	}
	if (role != NULL && is_guarded_role(role))
		deny_role_command("alter", role);
}

static void
check_roles_list(const char *verb, List *roles)
{
	ListCell   *lc;

	foreach(lc, roles)
	{
		const char *role = rolespec_name(lfirst_node(RoleSpec, lc));

		if (role != NULL && is_guarded_role(role))
			deny_role_command(verb, role);
	}
}

static void
check_statement(Node *parsetree)
{
	switch (nodeTag(parsetree))
	{
		case T_GrantRoleStmt:
			check_grant_role((GrantRoleStmt *) parsetree);
			break;
		case T_CreateRoleStmt:
			check_create_role((CreateRoleStmt *) parsetree);
			break;
		case T_AlterRoleStmt:
			check_alter_role((AlterRoleStmt *) parsetree);
			break;
		case T_AlterRoleSetStmt:
			{
				AlterRoleSetStmt *stmt = (AlterRoleSetStmt *) parsetree;
				const char *role = rolespec_name(stmt->role);

				if (role != NULL && is_guarded_role(role))
					deny_role_command("alter", role);
				check_parameter(stmt->setstmt);
			}
			break;
		case T_AlterDatabaseSetStmt:
			check_parameter(((AlterDatabaseSetStmt *) parsetree)->setstmt);
			break;
		case T_RenameStmt:
			{
				RenameStmt *stmt = (RenameStmt *) parsetree;

				if (stmt->renameType != OBJECT_ROLE)
					break;
				if (stmt->subname != NULL && is_guarded_role(stmt->subname))
					deny_role_command("rename", stmt->subname);
				if (is_platform_role_name(stmt->newname))
					deny_reserved_name(stmt->newname);
			}
			break;
		case T_DropRoleStmt:
			check_roles_list("drop", ((DropRoleStmt *) parsetree)->roles);
			break;
		case T_DropOwnedStmt:
			check_roles_list("drop objects owned by", ((DropOwnedStmt *) parsetree)->roles);
			break;
		case T_ReassignOwnedStmt:
			check_roles_list("reassign objects owned by", ((ReassignOwnedStmt *) parsetree)->roles);
			break;
		default:
			break;
	}
}

static void
pgwarden_guard_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
							  bool readOnlyTree, ProcessUtilityContext context,
							  ParamListInfo params, QueryEnvironment *queryEnv,
							  DestReceiver *dest, QueryCompletion *qc)
{
	if (!superuser())
		check_statement(pstmt->utilityStmt);

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

void
_PG_init(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = pgwarden_guard_ProcessUtility;
}
