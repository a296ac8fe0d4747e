/*
 * src/access.c
 *
 * Tenants.  Several programmes (brands, countries) share one database; a role
 * reaches the programmes loyalty.program_access binds to it or to a role whose
 * privileges it has (a row with a NULL programme binds every programme).
 * Superusers reach every programme.  The role that counts is the session's
 * current role outside any SECURITY DEFINER function (GetOuterUserId): the
 * login role, or the one chosen by SET ROLE.
 *
 * Each backend keeps what its role reaches; a statement trigger on
 * loyalty.program_access invalidates its relcache entry, and changes to roles
 * or memberships arrive through the syscache, so a check between changes
 * reads no table: a flag and a binary search.  An invalidation reaches a
 * backend at its next transaction start (or sooner, at a lock it takes), and
 * the bindings are then read again with the latest snapshot, not the
 * caller's: a statement that began before the change, or a repeatable read
 * transaction, would otherwise refill the cache with the bindings its
 * snapshot shows, and they would stay, valid, in every later transaction of
 * the backend until the next change (a connection pool hands one backend
 * from transaction to transaction for ever).  The catalogue (catalog.c)
 * reads its generation the same way.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "access.h"
#include "program.h"

PG_FUNCTION_INFO_V1(loyalty_program_open);
PG_FUNCTION_INFO_V1(loyalty_require_program);
PG_FUNCTION_INFO_V1(loyalty_require_every_program);
PG_FUNCTION_INFO_V1(loyalty_access_changed);
PG_FUNCTION_INFO_V1(loyalty_actor);

/* What the current role reaches */
static struct
{
	bool		valid;
	Oid			role;
	bool		every;
	int			n;
	int64	   *ids;			/* sorted, in TopMemoryContext */
}			Access;

/* Bumped by every invalidation, so that one arriving during a load counts */
static uint64 AccessInvalidations = 0;
static Oid	AccessRelid = InvalidOid;

static void
AccessRelcacheChanged(Datum arg, Oid relid)
{
	if (relid == InvalidOid || AccessRelid == InvalidOid || relid == AccessRelid)
	{
		Access.valid = false;
		AccessInvalidations++;
		/* looked up again: the extension may have been dropped and created */
		AccessRelid = InvalidOid;
	}
}

static void
AccessRolesChanged(Datum arg, int cacheid, uint32 hashvalue)
{
	Access.valid = false;
	AccessInvalidations++;
}

void
loyalty_access_init(void)
{
	CacheRegisterRelcacheCallback(AccessRelcacheChanged, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, AccessRolesChanged, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, AccessRolesChanged, (Datum) 0);
}

/* The oid of loyalty.program_access */
static Oid
AccessTable(void)
{
	Oid			nsp = get_namespace_oid("loyalty", false);
	Oid			relid = get_relname_relid("program_access", nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table loyalty.program_access is missing")));
	return relid;
}

/* The owner of loyalty.program_access, as whom the tables of this file are read */
static Oid
AccessOwner(void)
{
	HeapTuple	rel;
	Oid			owner;

	if (AccessRelid == InvalidOid)
		AccessRelid = AccessTable();
	rel = SearchSysCache1(RELOID, ObjectIdGetDatum(AccessRelid));
	if (!HeapTupleIsValid(rel))
		elog(ERROR, "cache lookup failed for relation %u", AccessRelid);
	owner = ((Form_pg_class) GETSTRUCT(rel))->relowner;
	ReleaseSysCache(rel);
	return owner;
}

/*
 * Run a read-only query as the owner of the tables (the caller may have no
 * privilege on them), connected to SPI, with the latest snapshot: it sees
 * every change whose invalidation has arrived (a change commits before its
 * invalidation goes out), whatever the caller's snapshot.  The rows are in
 * SPI_tuptable until the caller's SPI_finish.
 */
static void
ReadAsOwner(SPIPlanPtr *plan, const char *query)
{
	Oid			owner = AccessOwner();
	Oid			save_user;
	int			save_sec;

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		if (*plan == NULL)
		{
			*plan = SPI_prepare(query, 0, NULL);
			if (*plan == NULL || SPI_keepplan(*plan) != 0)
				elog(ERROR, "could not prepare \"%s\"", query);
		}
		if (SPI_execute_snapshot(*plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot,
								 true, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not run \"%s\"", query);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
}

/* Keep the bindings of roles whose privileges role has */
static void
LoadBindings(Oid role)
{
	static SPIPlanPtr plan = NULL;
	int64	   *ids;
	int			n = 0;

	SPI_connect();
	ReadAsOwner(&plan, "SELECT role::pg_catalog.oid, program_id FROM loyalty.program_access");
	ids = MemoryContextAlloc(TopMemoryContext, sizeof(int64) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		Oid			bound = DatumGetObjectId(SPI_getbinval(t, d, 1, &isnull));
		Datum		program = SPI_getbinval(t, d, 2, &isnull);

		if (!has_privs_of_role(role, bound))
			continue;
		if (isnull)
			Access.every = true;
		else
			ids[n++] = DatumGetInt64(program);
	}
	SPI_finish();
	qsort(ids, n, sizeof(int64), Int64Cmp);
	Access.ids = ids;
	Access.n = n;
}

/* Make Access describe the current role */
static void
AccessLoad(void)
{
	Oid			role = GetOuterUserId();
	uint64		seen;

	if (Access.valid && Access.role == role)
		return;
	if (AccessRelid == InvalidOid)
		AccessRelid = AccessTable();
	seen = AccessInvalidations;
	Access.valid = false;
	if (Access.ids)
		pfree(Access.ids);
	Access.ids = NULL;
	Access.n = 0;
	Access.every = superuser_arg(role);
	if (!Access.every)
		LoadBindings(role);
	Access.role = role;
	Access.valid = (seen == AccessInvalidations);
}

/* The current role reaches the programme */
bool
ProgramOpen(int64 program_id)
{
	AccessLoad();
	return Access.every ||
		bsearch(&program_id, Access.ids, Access.n, sizeof(int64), Int64Cmp) != NULL;
}

/* The role in effect: the actor of a change */
const char *
ActorName(void)
{
	return GetUserNameFromId(GetOuterUserId(), false);
}

/*
 * Error unless the current role reaches the programme; the format names what
 * was asked for ("customer 42"), and is formatted only for the error.
 */
void
RequireProgram(int64 program_id, const char *object_fmt,...)
{
	StringInfoData object;

	if (ProgramOpen(program_id))
		return;
	initStringInfo(&object);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, object_fmt);
		needed = appendStringInfoVA(&object, object_fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&object, needed);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for %s", object.data),
			 errdetail("Role \"%s\" is not bound to its programme.", ActorName()),
			 errhint("An administrator of the programme binds a role with loyalty.grant_program(program, role).")));
}

/* Error unless the current role reaches every programme (the jobs, which work on all) */
void
RequireEveryProgram(const char *what)
{
	AccessLoad();
	if (!Access.every)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for %s", what),
				 errdetail("It works on every programme, and role \"%s\" is not bound to every programme.",
						   ActorName()),
				 errhint("Run it as a role bound to every programme: loyalty.grant_program(NULL, role).")));
}

/*
 * program_open(program_id) returns whether the current role reaches the
 * programme; NULL stands for every programme, as in a binding.
 */
Datum
loyalty_program_open(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
	{
		AccessLoad();
		PG_RETURN_BOOL(Access.every);
	}
	PG_RETURN_BOOL(ProgramOpen(PG_GETARG_INT64(0)));
}

/* require_program(program_id, object) raises 42501 unless the role reaches the programme */
Datum
loyalty_require_program(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("program_id and object must not be null")));
	RequireProgram(PG_GETARG_INT64(0), "%s", text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_VOID();
}

/* require_every_program(what) raises 42501 unless the role reaches every programme */
Datum
loyalty_require_every_program(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("what must not be null")));
	RequireEveryProgram(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

/*
 * actor() returns the name of the role in effect outside any SECURITY
 * DEFINER function: who is recorded as having made a change.
 */
Datum
loyalty_actor(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(ActorName()));
}

/* Trigger on loyalty.program_access: every backend reloads at its next check */
Datum
loyalty_access_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("access_changed() must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(AccessTable());
	return PointerGetDatum(NULL);
}
