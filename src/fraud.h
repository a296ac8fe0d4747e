/*
 * src/fraud.h
 *
 * Fraud controls (src/fraud.c): the velocity rules of a programme, kept
 * compiled with its catalogue, and the check every operation that moves
 * points makes in its own transaction.
 */
#ifndef LOYALTY_FRAUD_H
#define LOYALTY_FRAUD_H

#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "condition.h"

typedef enum FraudMeasure
{
	FM_POINTS_EARNED,
	FM_POINTS_SPENT,
	FM_RECEIPTS,
	FM_REFUNDS,
	FM_MONEY_REFUNDED,
	FM_DISTINCT_CARDS,
	FM_DISTINCT_PHONES,
	FM_DISTINCT_STORES,
	FM_HOLDS,
	FM_ADJUSTMENTS
} FraudMeasure;

/* In the order an operation locks their tallies */
typedef enum FraudSubject
{
	FS_CUSTOMER,
	FS_IDENTIFIER,
	FS_STORE,
	FS_ACTOR,
	FS_DEVICE
} FraudSubject;

#define FRAUD_NSUBJECTS 5

typedef enum FraudAction
{
	FA_FLAG,
	FA_HOLD,
	FA_REFUSE
} FraudAction;

/* An active rule, as the catalogue keeps it */
typedef struct FraudRule
{
	int64		id;
	char	   *code;
	FraudMeasure measure;
	FraudSubject subject;
	int			currency;		/* catalogue index (points measures), or -1 */
	int64		resolution;		/* microseconds */
	int64		nbuckets;		/* window / resolution */
	int64		window_seconds;
	int64		threshold;
	FraudAction action;
	CondProgram *cond;			/* NULL: every operation */
	char	   *message;		/* or NULL */
} FraudRule;

typedef enum FraudOpKind
{
	FO_COMMIT,
	FO_REFUND,
	FO_REDEEM,
	FO_TRANSFER_OUT,
	FO_TRANSFER_IN,
	FO_ADJUST,
	FO_HOLD
} FraudOpKind;

struct Catalog;
struct ReceiptPlan;

/* An operation as the rules see it */
typedef struct FraudOp
{
	FraudOpKind kind;
	const char *reference;		/* receipt id, "receipt/refund", or a key */
	int64		customer;		/* 0: none */
	const char *subject[FRAUD_NSUBJECTS];	/* NULL: none (set by FraudCheck
											 * for customer and actor) */
	const char *store;
	TimestampTz at;
	/* a commit */
	const struct ReceiptPlan *plan;
	const char *ident_kind;		/* card, phone, email; NULL by id */
	const char *ident_value;	/* normalised */
	/* a refund: the receipt's document and the lines returned */
	Jsonb	   *receipt_doc;
	int			nlines;
	Jsonb	  **line_docs;
	const char **line_skus;
	int64	   *line_money;		/* minor units of money returned */
	/* an operation of the ledger */
	int			currency;		/* catalogue index, or -1 */
	int64		points;
} FraudOp;

extern void FraudLoadRules(struct Catalog *cat);
extern bool FraudAnyRule(const struct Catalog *cat, FraudOpKind kind);
extern bool FraudCheck(struct Catalog *cat, FraudOp *op);
extern bool FraudCheckLedger(int64 program_id, FraudOpKind kind, int64 customer,
							 const char *currency, int64 points, const char *reference);
extern bool FraudQueueHolds(void);
extern bool FraudStillHeld(int64 customer);

#endif
