/*
 * src/wallet.h
 *
 * The money core: a wallet row locked for the length of an operation, the
 * ledger entries appended to it, and the points lots that make up its
 * balance.  Every function here runs inside SPI (the caller has connected)
 * and assumes the caller holds the wallet lock when it changes anything.
 */
#ifndef LOYALTY_WALLET_H
#define LOYALTY_WALLET_H

#include "fmgr.h"
#include "utils/array.h"
#include "executor/tuptable.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "lot.h"

/* SQLSTATEs of the extension's own (documented in docs/functions.md) */
#define ERRCODE_LOYALTY_INSUFFICIENT_POINTS	MAKE_SQLSTATE('P','0','L','0','1')
#define ERRCODE_LOYALTY_HOLD_EXPIRED		MAKE_SQLSTATE('P','0','L','0','2')
#define ERRCODE_LOYALTY_HOLD_RESOLVED		MAKE_SQLSTATE('P','0','L','0','3')
#define ERRCODE_LOYALTY_KEY_REUSED			MAKE_SQLSTATE('2','3','L','0','1')

/* How WalletLock treats a wallet that is missing or in use */
typedef enum WalletLockMode
{
	WALLET_CREATE = 1,			/* wait for the lock; create the wallet if missing */
	WALLET_EXISTING = 2,		/* wait for the lock; a missing wallet is an error */
	WALLET_SKIP_LOCKED = 4,		/* skip (return false) if in use or missing */
	WALLET_SPEND = 8			/* flag: also read the customer's status */
} WalletLockMode;

typedef struct Wallet
{
	int64		customer_id;
	const char *currency;
	int64		program_id;
	int64		balance;		/* stored: lots' remainders, pending included */
	int64		held;
	int64		version;
	int64		version_locked; /* version when locked, before any touch */
	bool		has_next_expiry;
	TimestampTz next_expiry;	/* lower bound of live lots' valid_to */
	int64		restricted;		/* points in restricted lots */
	int64		debt;			/* points owed by refunds, paid by the next accruals */
	bool		has_pending_until;
	TimestampTz pending_until;	/* the latest valid_from of its lots: a
								 * transaction whose now() is earlier may find
								 * pending lots */
	char		customer_status[16];	/* read with WALLET_SPEND only */
	TimestampTz now;			/* the transaction's now() */
	int64		merged_into;	/* 0, or the customer this one was merged into */
	TupleTableSlot *row;		/* the locked wallet row, as last written */
	int64		effective;		/* points of the lots that count at the
								 * reader's instants (calculate: at the
								 * receipt's "at" and now); set by readers
								 * that compute it */
} Wallet;

/* A lot to create with the entry that credits it */
typedef struct NewLot
{
	int64		amount;
	TimestampTz valid_from;
	bool		has_valid_to;
	TimestampTz valid_to;
	const char *kind;
	int32		priority;
	const char *restriction;
	int64		source_lot_id;
} NewLot;

struct Lot;

/* One ledger entry to append; zero ids and NULL strings are SQL NULL */
typedef struct Entry
{
	const char *operation;
	int64		amount;			/* change of the stored balance */
	int64		held_amount;	/* change of held */
	int64		lot_id;
	int64		hold_id;
	const char *receipt_id;
	int64		peer_customer_id;
	const char *peer_currency;
	const char *idempotency_key;
	const char *actor;
	const char *reason;
	NewLot	   *new_lot;		/* created with the entry; its id becomes lot_id */
	struct Lot *lots;			/* lots whose take the entry spends */
	int			nlots;
} Entry;

/* A lot with points left, as redemption sees it */
typedef struct Lot
{
	int64		id;
	int64		amount;
	int64		remaining;
	TimestampTz valid_from;
	bool		has_valid_to;
	TimestampTz valid_to;
	int32		priority;
	char	   *kind;
	char	   *restriction;	/* NULL: spendable anywhere */
	int64		take;			/* points this operation takes from it */
	bool		has_tid;		/* read directly: where its row version is */
	ItemPointerData tid;
} Lot;

/* Which restricted lots an operation may spend */
typedef struct Applicable
{
	bool		all;			/* every lot, restricted or not */
	int			n;
	char	  **restrictions;	/* restricted lots with these may be spent */
} Applicable;

/* The result of an operation: the ledger entry written or replayed */
typedef struct EntryResult
{
	FunctionCallInfo fcinfo;	/* whose result type the entry is built in */
	MemoryContext callcxt;		/* the caller's context, outliving SPI */
	Datum		datum;
	bool		isnull;
	int64		hold_id;
	int64		version;		/* the wallet's version the entry made */
} EntryResult;

/* wallet.c */
extern bool WalletLock(Wallet *w, int64 customer_id, const char *currency,
					   WalletLockMode mode);
extern void WalletLockPair(Wallet *a, int64 customer_a, const char *currency_a,
						   Wallet *b, int64 customer_b, const char *currency_b,
						   WalletLockMode mode_b);
extern void WalletCheckSpending(Wallet *w);
extern void ReportMerged(int64 customer_id, int64 target);
extern void WalletCheckVersion(Wallet *w, FunctionCallInfo fcinfo, int argno);
extern int	WalletTouch(Wallet *w, bool force, int *holds_released);
extern void WalletAppend(Wallet *w, Entry *e, EntryResult *result);
extern void WalletSetMerged(Wallet *w, int64 target);
extern void WalletPayDebt(Wallet *w, int64 lot_id, int64 lot_amount);
extern void LowerNextExpiry(Wallet *w, NewLot *lot);
extern bool WalletReplay(Wallet *w, const char *key, const Entry *expect,
						 bool check_amounts, EntryResult *result);
extern int32 WalletSweep(FunctionCallInfo fcinfo, bool holds);
extern void EntryResultInit(EntryResult *result, FunctionCallInfo fcinfo);

/* ledger.c and receipt.c: operations for the C callers */
extern bool BeginWalletEntry(Wallet *w, int64 customer, const char *currency,
							 WalletLockMode mode, Entry *e, bool check_amounts,
							 EntryResult *result);
extern int64 LedgerAccrue(int64 customer, const char *currency, NewLot *lot,
						 const char *receipt, const char *idempotency_key,
						 const char *reason, EntryResult *result);
extern void ReceiptSpendLots(int64 customer, const char *currency, int n, const int64 *ids,
							 const int64 *amounts, const char *receipt,
							 const char *idempotency_key, EntryResult *result);
extern void ReceiptLockWallets(int64 customer);
extern int64 ReceiptReturnLots(int64 customer, const char *currency, int n, const int64 *ids,
							   const int64 *amounts, const char *receipt,
							   const char *idempotency_key, EntryResult *result);
extern int64 ReceiptTakeBack(int64 customer, const char *currency, int64 lot_id, int64 amount,
							 const char *receipt, const char *idempotency_key,
							 const char *shortfall, EntryResult *result);

/* receipt.c: what cancel and refund share */
typedef struct ReceiptEntry
{
	char	   *currency;
	int64		amount;			/* the refund entry's amount */
	int64		version;
} ReceiptEntry;
extern bool TableHasColumn(const char *table, const char *column);
extern bool ReceiptHasColumn(const char *column);
extern bool ReceiptNamesEntries(void);
/*
 * The ledger entries a receipt names (0.18 on), as e: $4 their currencies,
 * $5 their versions, in the wallets of customer $6; and the receipt's
 * columns that hold them, or, before 0.18, none (its entries carry keys)
 */
#define RECEIPT_NAMED_ENTRIES \
	" ROWS FROM (pg_catalog.unnest($4::text[]), pg_catalog.unnest($5::int8[])) w (currency, version)" \
	" JOIN loyalty.ledger e ON e.customer_id = $6 AND e.currency = w.currency" \
	"  AND e.version = w.version"
#define RECEIPT_ENTRY_COLUMNS "entry_currency, entry_version"
#define RECEIPT_ENTRY_COLUMNS_0_17 "'{}'::text[], '{}'::int8[]"
extern void ReceiptShortfallRules(int64 program_id, char **policy, int *exponent);
struct KeptQuery;
extern Datum ReceiptLockRow(int64 program_id, const char *receipt, const char *program_code,
						    struct KeptQuery *row_query);
extern int64 ReceiptPointsMoney(int64 program_id, const char *currency, int64 points);
extern Jsonb *ReceiptResult(Jsonb *payload, const ReceiptEntry *entries, int n);

/* Arguments of the SQL functions */
extern int64 ArgInt64(FunctionCallInfo fcinfo, int argno, const char *name);
extern int64 ArgPositive(FunctionCallInfo fcinfo, int argno, const char *name);
extern char *ArgText(FunctionCallInfo fcinfo, int argno, const char *name);
extern char *ArgTextOrNull(FunctionCallInfo fcinfo, int argno, const char *name);

/* lot.c */
extern int	LotOrder(const Lot *a, const Lot *b, bool restricted_first);
extern int	LoadLots(Wallet *w, Lot **lots);
extern bool LotEffective(Wallet *w, Lot *l);
extern int64 LotsAvailable(Wallet *w, Lot *lots, int n, Applicable *app);
extern int64 LotsPending(Wallet *w, Lot *lots, int n);
extern int64 AllocateLots(Wallet *w, Lot *lots, int n, Applicable *app, int64 amount);
extern int64 CreateLot(Wallet *w, int64 version, NewLot *lot);
extern void LotToNew(Lot *lot, int64 amount, const char *kind, NewLot *out);
extern void ApplicableFromArray(Applicable *app, ArrayType *array);
extern void TakePoints(Wallet *w, Applicable *app, int64 amount, int64 held_other,
					   Entry *e);
extern bool WalletPending(Wallet *w);
extern void RequirePoints(Wallet *w, Applicable *app, int64 amount, int64 held_other);
extern void ReportInsufficient(Wallet *w, Lot *lots, int n, Applicable *app,
							   int64 requested, int64 held_other);

#endif
