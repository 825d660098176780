"""Asset checks as functions: they pass on sound data and fail on the fault they look for."""

import datetime as dt

from perf_pipeline.assets.inputs import check_input_files_reconcile
from perf_pipeline.ingest import RawFile, validate_inputs

PORTFOLIOS = b"portfolio_id,client_id,base_currency,benchmark_id\nP1,C1,USD,\nP2,C1,USD,\n"
TRANSACTIONS = (b"transaction_id,portfolio_id,account_id,security_id,trade_date,type,quantity,"
                b"price,amount,fee,currency\nT1,P1,A1,,2024-01-02,DEPOSIT,,,100,,USD\n"
                b"T2,P1,A1,,2024-01-03,DEPOSIT,,,oops,,USD\n")


def validated():
    return validate_inputs([
        RawFile("portfolios/a.csv", "portfolios", PORTFOLIOS),
        RawFile("portfolios/b.csv", "portfolios", PORTFOLIOS),  # delivered again, identical
        RawFile("transactions/a.csv", "transactions", TRANSACTIONS),
        RawFile("transactions/b.csv", "transactions", TRANSACTIONS),
    ], today=dt.date(2026, 1, 1))


def test_reconcile_passes_with_identical_redeliveries():
    result = validated()
    assert len(result.portfolios) == 2 and len(result.transactions) == 1
    check = check_input_files_reconcile(result)
    assert check.passed, check.metadata["offending_files"]


def test_reconcile_fails_when_an_accepted_row_goes_missing():
    result = validated()
    lost = result.transactions.iloc[0:0]  # the accepted row vanished between validation and here
    check = check_input_files_reconcile(
        type(result)(**{**vars(result), "transactions": lost}))
    assert not check.passed
    assert check.metadata["files_off"].value == 1  # the file the kept copy came from
    assert "transactions/a.csv" in check.metadata["offending_files"].value
