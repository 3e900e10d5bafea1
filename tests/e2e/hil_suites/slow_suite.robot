*** Settings ***
Documentation     Runs golden vectors until it is stopped (used by test_run_signals.py).
Library           hil.robot.HilLibrary
Suite Setup       Open Device
Suite Teardown    Close Device


*** Test Cases ***
Golden Vectors Until Stopped
    Repeat Keyword    2 minutes    Output Should Match Golden    sine
