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
 * one that counts). In such a session this library sets pgaudit.log to 'none' while a top-level
 * statement starts its executor (where pgAudit logs SELECT, DML and function calls) or runs as a
 * utility statement (where pgAudit logs DDL, ROLE, MISC, DO and CALL), and back to the configured
 * value (RESET) for every statement started from inside it. So pgAudit logs exactly the
 * statements at nesting level > 0: in functions, procedures, DO blocks, triggers, and those that
 * utility statements run (EXPLAIN ANALYZE, CREATE TABLE AS, COPY (query)). Sessions the gateway
 * did not open (the platform's own, anyone on the server's socket) are logged fully.
 *
 * The switch is a plain SET (GUC_ACTION_SET), not a GUC nest level: utility statements may
 * commit inside (VACUUM, CREATE INDEX CONCURRENTLY, CALL with COMMIT), which a nest level cannot
 * survive. An error undoes it with the (sub)transaction, like any SET: pgaudit.log is then back
 * to what it was where the (sub)transaction began, and the flag below is restored in step by
 * the PG_FINALLY blocks between.
 *
 * Load it after pgaudit, so that its hooks run first: shared_preload_libraries =
 * '..., pgaudit, pgwarden_audit'. Nothing is logged and no SQL object is created.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "optimizer/planner.h"
#include "tcop/utility.h"
#include "utils/formatting.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

#if PG_VERSION_NUM < 160000
void		_PG_init(void);
#endif

static bool gateway_session = false;

/* Statements being planned, started, run or finished, or utility statements being processed. */
static int	nesting_level = 0;

/* pgaudit.log is 'none' by this library's doing (a top-level statement is being started). */
static bool suppressed = false;

static planner_hook_type prev_planner = NULL;
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* Sets pgaudit.log for this session: 'none', or NULL for the configured value (RESET). */
static void
set_pgaudit_log(const char *value)
{
	(void) set_config_option("pgaudit.log", value, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SET, true, 0, false);
}

/*
 * Whether the configured pgaudit.log (its reset value: the configuration file, or the role's or
 * database's setting) logs anything where a top-level statement of this kind is started: SELECT,
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
 * Before a statement starts (executor start or utility): pgAudit should see it unless it is a
 * top-level statement of a gateway session. Returns whether pgaudit.log was changed for it.
 * Where the configured classes log nothing anyway (the default ROLE,DDL for a SELECT), nothing is
 * SET; pgaudit.log is only put back to the configured value if something left it otherwise (an
 * error after a COMMIT inside a procedure restores the value the SET had committed).
 */
static bool
enter_statement(bool utility)
{
	bool		want = nesting_level == 0;

	/* No SET in parallel mode (a parallel worker starts its part of the plan at level 0). */
	if (!gateway_session || want == suppressed || IsInParallelMode())
		return false;
	if (want)
	{
		const char *configured = GetConfigOptionResetString("pgaudit.log");

		if (!configured_logs(configured, utility))
		{
			const char *current = GetConfigOption("pgaudit.log", true, false);

			if (current != NULL && configured != NULL && strcmp(current, configured) != 0)
				set_pgaudit_log(NULL);
			return false;
		}
	}
	set_pgaudit_log(want ? "none" : NULL);
	suppressed = want;
	return true;
}

/*
 * After the statement returned normally (on error, the abort undoes the SET); the callers'
 * PG_FINALLY has put the flag back already.
 */
static void
leave_statement(bool changed, bool was_suppressed)
{
	if (changed)
		set_pgaudit_log(was_suppressed ? "none" : NULL);
}

static void
pgwarden_audit_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	bool		was_suppressed = suppressed;
	bool		changed = enter_statement(false);

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
		suppressed = was_suppressed;	/* also on error, as the abort restores the SET */
	}
	PG_END_TRY();
	leave_statement(changed, was_suppressed);
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
	 * Transaction control (SAVEPOINT, RELEASE, ROLLBACK TO...) changes the GUC nest level inside
	 * the call, which a SET around it would not survive: pgAudit logs it (class MISC) and the
	 * platform drops those lines of gateway sessions.
	 */
	bool		changed = IsA(pstmt->utilityStmt, TransactionStmt) ? false : enter_statement(true);

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
		suppressed = was_suppressed;	/* also on error, as the abort restores the SET */
	}
	PG_END_TRY();
	leave_statement(changed, was_suppressed);
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
}
