// tinyml-hil: a UART bridge to one TCP client on 127.0.0.1 that moves bytes in batches.
//
// Renode 1.14's ServerSocketTerminal writes each byte the guest transmits with its own send() and
// its writer thread spins for 60 ms after every byte it sends (SocketServerProvider.WriterThreadBody),
// so a run of small requests keeps a host core busy doing nothing; it also reads one byte per call.
// This bridge reads what the socket holds at once and sends what the guest wrote since the last
// send in one call from a thread that sleeps until there is something to send. Bytes from the host
// still reach the UART through BackendTerminal, as time-domain events at the next sync point, so
// what the guest sees is the same. Bytes written while no client is connected are dropped.
// The backend loads it with `include @HilSocketTerminal.cs`, then
// `emulation CreateHilSocketTerminal <port> "<name>"` and `connector Connect <uart> <name>`.

using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using Antmicro.Migrant;
using Antmicro.Renode.Core;

namespace Antmicro.Renode.Backends.Terminals
{
    public static class HilSocketTerminalExtensions
    {
        public static void CreateHilSocketTerminal(this Emulation emulation, int port, string name)
        {
            emulation.ExternalsManager.AddExternal(new HilSocketTerminal(port), name);
        }
    }

    [Transient]
    public sealed class HilSocketTerminal : BackendTerminal, IDisposable
    {
        public HilSocketTerminal(int port)
        {
            listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            new Thread(AcceptAndRead) { IsBackground = true, Name = "HilSocketTerminal reader" }.Start();
            new Thread(Write) { IsBackground = true, Name = "HilSocketTerminal writer" }.Start();
        }

        public override void WriteChar(byte value)
        {
            lock(sync)
            {
                if(client == null)
                {
                    return;
                }
                pending.Add(value);
                if(pending.Count == 1)
                {
                    System.Threading.Monitor.Pulse(sync);
                }
            }
        }

        public void Dispose()
        {
            lock(sync)
            {
                stopped = true;
                client?.Close();
                client = null;
                System.Threading.Monitor.PulseAll(sync);
            }
            listener.Stop();
        }

        private void AcceptAndRead()
        {
            var buffer = new byte[4096];
            while(!stopped)
            {
                Socket accepted;
                try
                {
                    accepted = listener.AcceptSocket();
                }
                catch(Exception e) when(e is SocketException || e is ObjectDisposedException || e is InvalidOperationException)
                {
                    return;
                }
                accepted.NoDelay = true;
                lock(sync)
                {
                    client?.Close();
                    client = accepted;
                    pending.Clear();
                }
                try
                {
                    int count;
                    while((count = accepted.Receive(buffer)) > 0)
                    {
                        for(var i = 0; i < count; i++)
                        {
                            CallCharReceived(buffer[i]);
                        }
                    }
                }
                catch(Exception e) when(e is SocketException || e is ObjectDisposedException)
                {
                }
                lock(sync)
                {
                    if(client == accepted)
                    {
                        client = null;
                        pending.Clear();
                    }
                }
                accepted.Close();
            }
        }

        private void Write()
        {
            while(true)
            {
                byte[] batch;
                Socket target;
                lock(sync)
                {
                    while(!stopped && pending.Count == 0)
                    {
                        System.Threading.Monitor.Wait(sync);
                    }
                    if(stopped)
                    {
                        return;
                    }
                    batch = pending.ToArray();
                    pending.Clear();
                    target = client;
                }
                try
                {
                    target?.Send(batch);
                }
                catch(Exception e) when(e is SocketException || e is ObjectDisposedException)
                {
                }
            }
        }

        private readonly TcpListener listener;
        private readonly object sync = new object();
        private readonly List<byte> pending = new List<byte>();
        private Socket client;
        private volatile bool stopped;
    }
}
