// tinyml-hil: an STM32F4 I2C (v1) controller for Renode, written for drivers that poll it.
//
// Renode 1.14's own STM32F4_I2C keeps its event interrupt asserted after a transfer and hands
// over one byte per read transfer, so Zephyr 3.7's i2c_ll_stm32_v1 driver cannot read a sensor
// through it (docs/renode.md, "Sensors"). This model completes every bus phase at once and asks
// the target for each received byte when the CPU reads DR, so multi-byte reads work. It raises
// no interrupts: the firmware must use polled transfers (CONFIG_I2C_STM32_INTERRUPT=n).
// Register and flag layout: ST RM0090, section 27.6 (I2C registers).
// The backend loads it with `include @Hil_STM32F4_I2C.cs` (Renode compiles it at run time).

using System.Collections.Generic;
using Antmicro.Renode.Core;
using Antmicro.Renode.Core.Structure;
using Antmicro.Renode.Logging;
using Antmicro.Renode.Peripherals.Bus;

namespace Antmicro.Renode.Peripherals.I2C
{
    public sealed class Hil_STM32F4_I2C : SimpleContainer<II2CPeripheral>, IDoubleWordPeripheral, IWordPeripheral, IBytePeripheral, IKnownSize
    {
        public Hil_STM32F4_I2C(Machine machine) : base(machine)
        {
            Reset();
        }

        public long Size => 0x400;

        public override void Reset()
        {
            cr1 = cr2 = oar1 = oar2 = ccr = fltr = 0;
            trise = 2;
            sr1 = 0;
            addressFlagSeen = false;
            phase = Phase.Idle;
            target = null;
            reader = null;
            written.Clear();
        }

        public uint ReadDoubleWord(long offset)
        {
            switch((Register)offset)
            {
                case Register.Control1: return cr1;
                case Register.Control2: return cr2;
                case Register.OwnAddress1: return oar1;
                case Register.OwnAddress2: return oar2;
                case Register.Data: return ReceiveByte();
                case Register.Status1:
                    addressFlagSeen = (sr1 & ADDR) != 0;
                    return Status1();
                case Register.Status2:
                    if(addressFlagSeen)
                    {
                        sr1 &= ~ADDR; // SR1 then SR2 read: ADDR is cleared and the data phase starts
                        addressFlagSeen = false;
                    }
                    return (phase == Phase.Idle ? 0u : MSL | BUSY) | (phase == Phase.Writing ? TRA : 0u);
                case Register.ClockControl: return ccr;
                case Register.RiseTime: return trise;
                case Register.NoiseFilter: return fltr;
                default:
                    this.Log(LogLevel.Warning, "read from unknown offset 0x{0:X}", offset);
                    return 0;
            }
        }

        // Narrower accesses reach the same registers: no read-modify-write, which would pop DR.
        public ushort ReadWord(long offset) => (ushort)ReadDoubleWord(offset);

        public void WriteWord(long offset, ushort value) => WriteDoubleWord(offset, value);

        public byte ReadByte(long offset) => (byte)ReadDoubleWord(offset);

        public void WriteByte(long offset, byte value) => WriteDoubleWord(offset, value);

        public void WriteDoubleWord(long offset, uint value)
        {
            switch((Register)offset)
            {
                case Register.Control1: WriteControl1(value); break;
                case Register.Control2: cr2 = value; break;
                case Register.OwnAddress1: oar1 = value; break;
                case Register.OwnAddress2: oar2 = value; break;
                case Register.Data: TransmitByte((byte)value); break;
                case Register.Status1: sr1 &= value | ~ErrorFlags; break; // error flags: write 0 to clear
                case Register.ClockControl: ccr = value; break;
                case Register.RiseTime: trise = value; break;
                case Register.NoiseFilter: fltr = value; break;
                default:
                    this.Log(LogLevel.Warning, "write of 0x{0:X} to unknown offset 0x{1:X}", value, offset);
                    break;
            }
        }

        private uint Status1()
        {
            var value = sr1;
            if((sr1 & ADDR) == 0)
            {
                if(phase == Phase.Writing)
                {
                    value |= TXE | BTF; // every byte leaves at once
                }
                else if(phase == Phase.Reading)
                {
                    value |= RXNE | BTF; // the next byte is always there
                }
            }
            return value;
        }

        private void WriteControl1(uint value)
        {
            if((value & SWRST) != 0)
            {
                Reset();
                cr1 = SWRST;
                return;
            }
            cr1 = value & ~(START | STOP); // the hardware clears START and STOP once it has sent them
            if((value & PE) == 0)
            {
                return;
            }
            if((value & START) != 0)
            {
                Start();
            }
            if((value & STOP) != 0)
            {
                Stop();
            }
        }

        private void Start()
        {
            if(phase == Phase.Writing)
            {
                Flush(); // a repeated start: the target gets the bytes written so far (a register address)
            }
            sr1 = (sr1 & ErrorFlags) | SB;
            phase = Phase.Started;
            target = null;
            reader = null;
        }

        private void Stop()
        {
            if(phase == Phase.Writing)
            {
                Flush();
            }
            target?.FinishTransmission();
            sr1 &= ErrorFlags;
            phase = Phase.Idle;
            target = null;
            // reader stays: drivers set STOP before they read the last one or two bytes from DR
        }

        private void Flush()
        {
            if(target != null && written.Count > 0)
            {
                target.Write(written.ToArray());
            }
            written.Clear();
        }

        private void TransmitByte(byte value)
        {
            switch(phase)
            {
                case Phase.Started:
                    sr1 &= ~SB;
                    var address = value >> 1;
                    if(!ChildCollection.TryGetValue(address, out target))
                    {
                        this.Log(LogLevel.Debug, "no device at 0x{0:X2}: NACK", address);
                        sr1 |= AF;
                        phase = Phase.Idle;
                        target = null;
                        return;
                    }
                    sr1 |= ADDR;
                    if((value & 1) != 0)
                    {
                        phase = Phase.Reading;
                        reader = target;
                    }
                    else
                    {
                        phase = Phase.Writing;
                        written.Clear();
                    }
                    break;
                case Phase.Writing:
                    written.Add(value);
                    break;
                default:
                    this.Log(LogLevel.Warning, "DR written (0x{0:X2}) outside an address or write phase", value);
                    break;
            }
        }

        private uint ReceiveByte()
        {
            if(reader == null)
            {
                return 0; // ST's LL_I2C_TransmitData8 reads DR before writing it (MODIFY_REG)
            }
            var received = reader.Read(1);
            return received.Length > 0 ? received[0] : 0u;
        }

        private uint cr1, cr2, oar1, oar2, ccr, trise, fltr, sr1;
        private bool addressFlagSeen;
        private Phase phase;
        private II2CPeripheral target;
        private II2CPeripheral reader;
        private readonly List<byte> written = new List<byte>();

        // CR1
        private const uint PE = 1u << 0, START = 1u << 8, STOP = 1u << 9, SWRST = 1u << 15;
        // SR1
        private const uint SB = 1u << 0, ADDR = 1u << 1, BTF = 1u << 2, RXNE = 1u << 6, TXE = 1u << 7;
        private const uint BERR = 1u << 8, ARLO = 1u << 9, AF = 1u << 10, OVR = 1u << 11;
        private const uint ErrorFlags = BERR | ARLO | AF | OVR;
        // SR2
        private const uint MSL = 1u << 0, BUSY = 1u << 1, TRA = 1u << 2;

        private enum Phase
        {
            Idle,
            Started,
            Writing,
            Reading,
        }

        private enum Register : long
        {
            Control1 = 0x00,
            Control2 = 0x04,
            OwnAddress1 = 0x08,
            OwnAddress2 = 0x0C,
            Data = 0x10,
            Status1 = 0x14,
            Status2 = 0x18,
            ClockControl = 0x1C,
            RiseTime = 0x20,
            NoiseFilter = 0x24,
        }
    }
}
