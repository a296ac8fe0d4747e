/*
 * src/campaigns.h
 *
 * Challenges (src/campaigns.c): the programme's active challenges, kept
 * compiled with its catalogue, moved by commit and taken back by cancel
 * and refund in their own transactions.  docs/campaigns.md is the contract.
 */
#ifndef LOYALTY_CAMPAIGNS_H
#define LOYALTY_CAMPAIGNS_H

#include "datatype/timestamp.h"
#include "utils/timestamp.h"

#include "condition.h"

typedef enum ChallengeGoal
{
	CG_RECEIPTS,
	CG_SPEND,
	CG_QUANTITY,
	CG_DISTINCT,
	CG_STREAK,
	CG_STEPS
} ChallengeGoal;

/* An active challenge, as the catalogue keeps it */
typedef struct Challenge
{
	int64		id;
	char	   *code;
	TimestampTz starts_at;
	bool		has_end;
	TimestampTz ends_at;
	bool		has_duration;
	Interval	duration;
	bool		opt_in;
	int			audience;		/* AUD_ALL, AUD_TIERS or AUD_SEGMENTS */
	int			ntiers;
	char	  **tiers;
	int			nsegments;
	char	  **segments;
	ChallengeGoal goal;
	CondProgram *cond;			/* NULL: every line */
	int			distinct_attr;	/* dictionary id (goal distinct), or -1 */
	bool		weeks;			/* goal streak: ISO weeks, else days */
	int64		target;			/* in the unit of challenge_progress.progress */
	int			nsteps;
	CondProgram **steps;
	/* the reward */
	char	   *reward_currency;	/* NULL: no points */
	int64		reward_points;
	bool		has_valid_for;
	Interval	reward_valid_for;
	char	   *reward_kind;
	char	   *reward_restriction;	/* text, or NULL */
	char	   *reward_promotion;	/* code, or NULL */
	char	   *reward_achievement;	/* code, or NULL */
	int32		reward_level;
	bool		keep_reward;
	uint64	   *exp_masks;		/* per experiment, the variants that list it;
								 * NULL: listed by none */
} Challenge;

struct Catalog;
struct ReceiptPlan;

/* A line of a receipt being returned, quantities in thousandths */
typedef struct ReturnedLine
{
	int32		pos;			/* 0-based place in the receipt's lines */
	int64		qty_milli;		/* the line's quantity */
	int64		before_milli;	/* returned before this return */
	int64		after_milli;	/* returned after it */
	int64		spend;			/* its money after discounts (amount - discount) */
} ReturnedLine;

extern void CampaignLoad(struct Catalog *cat);
extern void CampaignCommit(struct Catalog *cat, const struct ReceiptPlan *plan, const char *rid);
extern void CampaignReturn(int64 program_id, const char *rid, int64 customer,
						   int nlines, const ReturnedLine *lines);

#endif
