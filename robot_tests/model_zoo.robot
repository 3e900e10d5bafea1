*** Settings ***
Documentation     The model zoo on the device under test: each model's accuracy on its evaluation
...               set (with a confusion matrix in the log), its golden outputs and its budgets, and
...               the gesture model watching recorded motions stream by, over the wire and
...               through the (emulated) accelerometer.
...               A model the device does not serve is skipped with the reason.
Library           hil.robot.HilLibrary
Suite Setup       Open Device
Suite Teardown    Close Device


*** Variables ***
${STIMULI}        ${CURDIR}/../models/gesture/stimuli


*** Test Cases ***
Gesture Accuracy Meets Its Floor
    [Template]    Dataset Accuracy Should Meet Its Floor
    gesture

Keyword Spotting Accuracy Meets Its Floor
    [Template]    Dataset Accuracy Should Meet Its Floor
    kws

Anomaly Detection Accuracy Meets Its Floor
    [Template]    Dataset Accuracy Should Meet Its Floor
    anomaly

Gesture Matches Its Golden Outputs Within Budget
    [Template]    Model Should Match Golden Within Budget
    gesture

Keyword Spotting Matches Its Golden Outputs Within Budget
    [Template]    Model Should Match Golden Within Budget
    kws

Anomaly Detection Matches Its Golden Outputs Within Budget
    [Template]    Model Should Match Golden Within Budget
    anomaly

Gesture Sequence Raises Each Gesture Once In Its Time Window
    Skip Unless Device Serves    gesture
    Stimulus Should Raise Expected Events    gesture    ${STIMULI}/sequence.csv

Device Left Idle Raises No Gesture
    Skip Unless Device Serves    gesture
    Stimulus Should Raise Expected Events    gesture    ${STIMULI}/idle_only.csv

Gesture Sequence Through The Accelerometer Raises Each Gesture Once
    [Documentation]    The firmware samples its own accelerometer, which plays the recording
    ...                (reference twin, Renode); skipped where no sensor can be fed.
    Skip Unless Device Serves    gesture
    Stimulus Should Raise Expected Events    gesture    ${STIMULI}/sequence.csv    source=sensor

Accelerometer At Rest Raises No Gesture
    Skip Unless Device Serves    gesture
    Stimulus Should Raise Expected Events    gesture    ${STIMULI}/idle_only.csv    source=sensor


*** Keywords ***
Dataset Accuracy Should Meet Its Floor
    [Arguments]    ${model}
    Skip Unless Device Serves    ${model}
    Evaluation Score Should Meet Floor    ${model}

Model Should Match Golden Within Budget
    [Arguments]    ${model}
    Skip Unless Device Serves    ${model}
    Output Should Match Golden    ${model}
    Latency Should Be Below    ${model}
    Arena Usage Should Be Below    ${model}
