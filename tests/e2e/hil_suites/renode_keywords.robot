*** Settings ***
Documentation     Renode's own keywords next to ours, acting on the same emulated machine.
...               Runs on a Renode target started with its robot server (robot_server = true
...               or HIL_RENODE_ROBOT=1); on any other target the tests are skipped with the reason.
Library           hil.robot.HilLibrary
Suite Setup       Open Device
Suite Teardown    Close Device


*** Variables ***
${CONSOLE}        sysbus.uart0    # the target's console UART (nRF52840); sysbus.usart2 on stm32f4_disco


*** Test Cases ***
The CPU Executes Instructions While The Device Infers
    Import Renode Keywords
    ${before}=    Renode.Execute Command    sysbus.cpu ExecutedInstructions
    Output Should Match Golden    sine
    ${after}=    Renode.Execute Command    sysbus.cpu ExecutedInstructions
    Should Be True    int($after.split()[0], 0) > int($before.split()[0], 0)

Renode Hears The Firmware Boot When Our Keyword Resets It
    Import Renode Keywords
    Renode.Create Terminal Tester    ${CONSOLE}    timeout=30    machine=${RENODE_MACHINE}
    Reset Device
    Renode.Wait For Line On Uart    HIL READY
    Device Should Serve Model    sine
