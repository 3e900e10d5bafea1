*** Settings ***
Documentation     A few real checks for the report tests' second twin target (tests/e2e/test_report.py),
...               one of which fails on purpose so the report shows a failure with its console tail.
Library           hil.robot.HilLibrary
Suite Setup       Open Device
Suite Teardown    Close Device


*** Test Cases ***
Sine Matches Its Golden Vectors
    Output Should Match Golden    sine

Anomaly Detection Accuracy Meets Its Floor
    Evaluation Score Should Meet Floor    anomaly

Sine Latency Under An Impossible Limit Fails
    Latency Should Be Below    sine    limit_us=0.001
