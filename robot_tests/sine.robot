*** Settings ***
Documentation     The sine model on the device under test: golden outputs, accuracy on the
...               evaluation set, latency and memory budgets, and refusal of bad input.
...               Runs unchanged on every target (``hil run --target T --suite robot``).
Library           hil.robot.HilLibrary
Suite Setup       Open Device
Suite Teardown    Close Device


*** Test Cases ***
Device Serves The Sine Model
    Device Should Serve Model    sine

Inference Matches Golden Vectors
    Output Should Match Golden    sine

Error On The Evaluation Set Stays Under The Ceiling
    Evaluation Error Should Not Exceed Ceiling    sine

Sine Of Half Pi Is One
    ${result}=    Run Inference With Values    sine    1.5708
    Output Should Be Close To    ${result}    1.0    tolerance=0.1

Quantized Input Gives The Same Answer
    ${q}=    Quantize    sine    1.5708
    ${result}=    Run Inference    sine    @{q}
    ${y}=    Dequantize    ${result}
    Should Be True    0.9 < ${y}[0] < 1.1

Latency Stays Within Budget
    Latency Should Be Below    sine

Arena Usage Stays Within Budget
    Arena Usage Should Be Below    sine

Input Of The Wrong Size Is Refused With A Clear Error
    Run Keyword And Expect Error    *wrong input size for sine*    Run Inference    sine    1    2

Unknown Model Is Refused With A Clear Error
    Run Keyword And Expect Error    *unknown model 'no_such_model'*    Run Inference    no_such_model    1

Device Resynchronises After Garbage On The Line
    Send Raw Bytes    00 ff a5 5a 03 07 ff ff 41 42 43 a5 5a 01 02 03 00 de ad be
    Output Should Match Golden    sine

Device Answers Again After A Reset
    Reset Device
    Output Should Match Golden    sine
