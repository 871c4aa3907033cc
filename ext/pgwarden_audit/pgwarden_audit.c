/*
 * pgwarden_audit: in sessions opened by the pgwarden gateway, pgAudit logs only what the gateway
 * cannot see.
 *
 * The gateway records every statement a client sends: it decodes the protocol it relays. pgAudit
 * on the server is there for the statements the gateway cannot see, those run from inside another
 * statement: in functions, procedures, DO blocks and triggers. Logging each top-level statement a
 * second time costs the server more than a short statement itself (a jsonlog line per statement
 * and relation, through the logging collector), and the platform would drop those lines.
 *
 * The gateway sets pgwarden_audit.gateway_session = on in the startup packet of every session it
 * opens (PGC_BACKEND: fixed for the session's life; the gateway sets it last, so its value is the
 * one that counts). In such a session this library makes pgAudit log with the classes 'none' only
 * while the client's own top-level statement starts, as PostgreSQL marks it: a utility statement
 * processed with PROCESS_UTILITY_TOPLEVEL (where pgAudit logs DDL, ROLE, MISC, DO and CALL), or the
 * executor start of a planned statement of the portal run for a Query or Bind/Execute message
 * (where pgAudit logs SELECT, DML and function calls); and with the configured classes again for
 * every statement started from inside it. So pgAudit logs everything else: the statements at
 * nesting level > 0 (in functions, procedures, DO blocks, triggers, and those that utility
 * statements run: EXPLAIN ANALYZE, CREATE TABLE AS, COPY (query)), and those that run at level 0
 * outside any client statement: a fast-path FunctionCall, a deferred constraint trigger fired at
 * COMMIT, an input function run at Bind. Sessions the gateway did not open (the platform's own,
 * anyone on the server's socket) are logged fully.
 *
 * The switch is not a SET: it hands pgAudit's own assign hook of pgaudit.log the 'none' worked
 * out once per backend by pgAudit's check hook, and then the GUC's current value with its own
 * `extra` (what pgAudit logs with is the class set the assign hook stores). So no GUC machinery
 * runs per statement (a SET and a RESET parsed the class list twice and made the transaction's
 * end walk every GUC), nothing is transactional (utility statements may commit inside: VACUUM,
 * CREATE INDEX CONCURRENTLY, CALL with COMMIT), and SHOW pgaudit.log always shows the configured
 * value. The PG_FINALLY blocks of the hooks switch back, also on error. While a client's
 * statement holds 'none', any assignment of pgaudit.log (a SET inside, a function's SET clause
 * ending, a subtransaction's abort) goes through a wrapper of that assign hook that keeps it.
 *
 * It also keeps pgAudit's records from being forged: a log message that starts with "AUDIT: " and
 * was not written by pgAudit (RAISE LOG 'AUDIT: ...' in a DO block) is rewritten before it is
 * written (emit_log_hook), in every session.
 *
 * Load it after pgaudit, so that its hooks run first: shared_preload_libraries =
 * '..., pgaudit, pgwarden_audit'. No SQL object is created.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "nodes/pg_list.h"
#include "optimizer/planner.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/elog.h"
#include "utils/formatting.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/portal.h"

PG_MODULE_MAGIC;

#if PG_VERSION_NUM < 160000
void		_PG_init(void);
#endif

static bool gateway_session = false;

/* Statements being planned, started, run or finished, or utility statements being processed. */
static int	nesting_level = 0;

/* pgaudit.log is 'none' by this library's doing (a top-level statement is being started). */
static bool suppressed = false;

/*
 * pgAudit's pgaudit.log, looked up once per backend (NULL: pgAudit is not loaded), its own assign
 * hook, and the `extra` its check hook made of 'none'.
 */
static struct config_string *pgaudit_log = NULL;
static bool pgaudit_log_looked_up = false;
static GucStringAssignHook pgaudit_assign = NULL;
static void *none_extra = NULL;

static planner_hook_type prev_planner = NULL;
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static emit_log_hook_type prev_emit_log_hook = NULL;

/* pgAudit's own log lines come from this function of this file (pgaudit.c, every release). */
#define PGAUDIT_SOURCE_FILE "pgaudit.c"
#define PGAUDIT_SOURCE_FUNCTION "log_audit_event"
#define AUDIT_PREFIX "AUDIT: "
#define NOT_PGAUDIT_PREFIX "not a pgAudit record: "

/* Any assignment of pgaudit.log: pgAudit's, then 'none' again while a client statement holds it. */
static void
pgwarden_audit_assign_pgaudit_log(const char *newval, void *extra)
{
	pgaudit_assign(newval, extra);
	if (suppressed)
		pgaudit_assign("none", none_extra);
}

/*
 * Finds pgaudit.log and makes pgAudit's 'none' (once per backend; the GUC table is the
 * postmaster's, copied at fork, so the wrapper is installed in this backend only).
 */
static struct config_string *
find_pgaudit_log(void)
{
	struct config_generic *gen = NULL;
	char	   *none;
	void	   *extra = NULL;

	if (pgaudit_log_looked_up)
		return pgaudit_log;
	pgaudit_log_looked_up = true;
#if PG_VERSION_NUM >= 160000
	gen = find_option("pgaudit.log", false, true, ERROR);
#else
	{
		struct config_generic **vars = get_guc_variables();
		int			n = GetNumConfigOptions();

		for (int i = 0; i < n; i++)
			if (strcmp(vars[i]->name, "pgaudit.log") == 0)
			{
				gen = vars[i];
				break;
			}
	}
#endif
	if (gen == NULL || gen->vartype != PGC_STRING || (gen->flags & GUC_CUSTOM_PLACEHOLDER))
		return NULL;
	pgaudit_log = (struct config_string *) gen;
	if (pgaudit_log->check_hook == NULL || pgaudit_log->assign_hook == NULL)
		return pgaudit_log = NULL;
	/* A check hook may replace or free its value: give it a malloc'd one, as the GUC code does. */
	none = strdup("none");
	if (none == NULL || !pgaudit_log->check_hook(&none, &extra, PGC_S_SESSION) || extra == NULL)
	{
		free(none);
		return pgaudit_log = NULL;
	}
	free(none);
	none_extra = extra;
	pgaudit_assign = pgaudit_log->assign_hook;
	pgaudit_log->assign_hook = pgwarden_audit_assign_pgaudit_log;
	return pgaudit_log;
}

/* Puts pgAudit's class set to 'none', or back to the GUC's current value. */
static void
switch_pgaudit(bool none)
{
	suppressed = none;
	if (none)
		pgaudit_assign("none", none_extra);
	else
		pgaudit_assign(*pgaudit_log->variable, pgaudit_log->gen.extra);
}

/*
 * Whether pgaudit.log as it is (the configuration file, the role's or database's setting, a
 * superuser's SET) logs anything where a top-level statement of this kind is started: SELECT,
 * DML and function calls at executor start (READ, WRITE, FUNCTION), anything at all for a utility
 * statement. When in doubt, yes. Cached with a copy of the value it was worked out for.
 */
static bool
configured_logs(const char *configured, bool utility)
{
	static char *cached = NULL;
	static bool logs_executor = true;
	static bool logs_utility = true;

	if (configured == NULL)
		return true;
	if (cached == NULL || strcmp(configured, cached) != 0)
	{
		char	   *lower = asc_tolower(configured, strlen(configured));

		logs_utility = strstr(lower, "none") == NULL || strchr(lower, ',') != NULL;
		logs_executor = strstr(lower, "all") != NULL || strstr(lower, "read") != NULL ||
			strstr(lower, "write") != NULL || strstr(lower, "function") != NULL;
		pfree(lower);
		if (cached != NULL)
			pfree(cached);
		cached = MemoryContextStrdup(TopMemoryContext, configured);
	}
	return utility ? logs_utility : logs_executor;
}

/*
 * Before a statement starts (executor start or utility): pgAudit should see it unless it is the
 * client's own top-level statement in a gateway session (`client_statement`, worked out by the
 * callers from what PostgreSQL marks so). Returns whether the class set was switched for it (the
 * caller switches it back when the statement is done, also on error). Where pgaudit.log logs
 * nothing anyway (the default ROLE,DDL for a SELECT), nothing is switched.
 */
static bool
enter_statement(bool client_statement, bool utility)
{
	/* Not in parallel mode (a parallel worker starts its part of the plan at level 0). */
	if (!gateway_session || IsInParallelMode() || client_statement == suppressed)
		return false;
	if (find_pgaudit_log() == NULL)
		return false;
	if (client_statement && !configured_logs(*pgaudit_log->variable, utility))
		return false;
	switch_pgaudit(client_statement);
	return true;
}

/*
 * Whether only the protocol's own error callbacks are set: none for a simple Query, the one of
 * Bind and Execute (ParamsErrorCallback). A PL function (plpgsql, SQL), the input functions of a
 * Bind's parameters and SPI each push their own.
 */
static bool
only_protocol_error_context(void)
{
	ErrorContextCallback *cb;

	for (cb = error_context_stack; cb != NULL; cb = cb->previous)
		if (cb->callback != ParamsErrorCallback)
			return false;
	return true;
}

/*
 * Whether the executor is starting the client's own statement: one of the planned statements of
 * the portal PostgreSQL is running for a Query or Bind/Execute message (ActivePortal, whose text is
 * the message's: debug_query_string), at nesting level 0, with no function on the way. Everything
 * else that starts at level 0 is not the client's statement and pgAudit logs it: the statements of
 * a function called through the fast-path protocol (FunctionCall, no query text), of a deferred
 * constraint trigger fired at COMMIT (no active portal, or a PL function's context), of a type's
 * or domain's input function at Bind (its parameter's error context), and the cursors those open
 * (a portal of their own, with their own text).
 */
static bool
is_client_query(QueryDesc *queryDesc)
{
	Portal		portal = ActivePortal;

	if (nesting_level != 0 || portal == NULL || debug_query_string == NULL ||
		portal->sourceText == NULL)
		return false;
	if (!list_member_ptr(portal->stmts, queryDesc->plannedstmt))
		return false;
	if (portal->sourceText != debug_query_string &&
		strcmp(portal->sourceText, debug_query_string) != 0)
		return false;
	return only_protocol_error_context();
}

static void
pgwarden_audit_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	bool		was_suppressed = suppressed;
	bool		changed = enter_statement(is_client_query(queryDesc), false);

	nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorStart)
			prev_ExecutorStart(queryDesc, eflags);
		else
			standard_ExecutorStart(queryDesc, eflags);
	}
	PG_FINALLY();
	{
		nesting_level--;
		if (changed)
			switch_pgaudit(was_suppressed); /* also on error */
	}
	PG_END_TRY();
}

static PlannedStmt *
pgwarden_audit_planner(Query *parse, const char *query_string, int cursorOptions,
					   ParamListInfo boundParams)
{
	PlannedStmt *result;

	nesting_level++;
	PG_TRY();
	{
		if (prev_planner)
			result = prev_planner(parse, query_string, cursorOptions, boundParams);
		else
			result = standard_planner(parse, query_string, cursorOptions, boundParams);
	}
	PG_FINALLY();
	{
		nesting_level--;
	}
	PG_END_TRY();
	return result;
}

#if PG_VERSION_NUM >= 180000
#define EXECUTOR_RUN_ARGS queryDesc, direction, count
static void
pgwarden_audit_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count)
#else
#define EXECUTOR_RUN_ARGS queryDesc, direction, count, execute_once
static void
pgwarden_audit_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
						   bool execute_once)
#endif
{
	nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(EXECUTOR_RUN_ARGS);
		else
			standard_ExecutorRun(EXECUTOR_RUN_ARGS);
	}
	PG_FINALLY();
	{
		nesting_level--;
	}
	PG_END_TRY();
}

static void
pgwarden_audit_ExecutorFinish(QueryDesc *queryDesc)
{
	nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		nesting_level--;
	}
	PG_END_TRY();
}

static void
pgwarden_audit_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
							  bool readOnlyTree, ProcessUtilityContext context,
							  ParamListInfo params, QueryEnvironment *queryEnv,
							  DestReceiver *dest, QueryCompletion *qc)
{
	bool		was_suppressed = suppressed;
	/*
	 * The client's own utility statement is the one PostgreSQL runs as PROCESS_UTILITY_TOPLEVEL
	 * (a Query or Execute message's portal); SPI, extension scripts and event triggers run theirs
	 * as QUERY or SUBCOMMAND, and pgAudit logs those. Transaction control (SAVEPOINT, RELEASE,
	 * ROLLBACK TO...) is left out, as when the switch was a SET (which the GUC nest level changed
	 * inside the call would not have survived): pgAudit logs it (class MISC) and the platform
	 * drops those lines of gateway sessions.
	 */
	bool		client_statement = context == PROCESS_UTILITY_TOPLEVEL && nesting_level == 0;
	bool		changed = IsA(pstmt->utilityStmt, TransactionStmt) ? false :
		enter_statement(client_statement, true);

	nesting_level++;
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
									queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		nesting_level--;
		if (changed)
			switch_pgaudit(was_suppressed); /* also on error */
	}
	PG_END_TRY();
}

/*
 * A server log message that starts like a pgAudit record but does not come from pgAudit (RAISE LOG
 * or RAISE EXCEPTION 'AUDIT: ...' in a function or DO block, any error text a client chooses) is
 * written with a prefix, so that nothing reading the log takes it for one.
 */
static bool
from_pgaudit(const ErrorData *edata)
{
	const char *file = edata->filename;
	const char *slash;

	if (file == NULL || edata->funcname == NULL)
		return false;
	slash = strrchr(file, '/');
	if (slash != NULL)
		file = slash + 1;
	return strcmp(file, PGAUDIT_SOURCE_FILE) == 0 &&
		strcmp(edata->funcname, PGAUDIT_SOURCE_FUNCTION) == 0;
}

static void
pgwarden_audit_emit_log(ErrorData *edata)
{
	if (edata->message != NULL &&
		strncmp(edata->message, AUDIT_PREFIX, strlen(AUDIT_PREFIX)) == 0 &&
		!from_pgaudit(edata))
		edata->message = psprintf(NOT_PGAUDIT_PREFIX "%s", edata->message);
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errmsg("pgwarden_audit must be loaded via shared_preload_libraries")));

	DefineCustomBoolVariable("pgwarden_audit.gateway_session",
							 "Set by the pgwarden gateway on the sessions it opens: pgAudit then logs only statements nested in another statement.",
							 NULL,
							 &gateway_session,
							 false,
							 PGC_BACKEND,
							 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("pgwarden_audit");

	prev_planner = planner_hook;
	planner_hook = pgwarden_audit_planner;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = pgwarden_audit_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = pgwarden_audit_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = pgwarden_audit_ExecutorFinish;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = pgwarden_audit_ProcessUtility;
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = pgwarden_audit_emit_log;
}
