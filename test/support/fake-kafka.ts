// Stand-ins for a lane's Kafka side (its group membership and its producer), for the lane consumer's own
// logic in-process (start failures, a member that loses the group). The engine and the messages themselves
// are tested against the real broker elsewhere.
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import type { GroupMember, GroupMemberOptions } from '../../src/messaging/kafka/group-member.ts';
import type { LaneConsumerOptions, LaneSender } from '../../src/messaging/kafka/lane-consumer.ts';
import type { Schedulable } from '../../src/messaging/engine/ports.ts';

export class FakeMember implements GroupMember {
  failStart: Error | undefined;
  readonly calls: string[] = [];
  readonly options: GroupMemberOptions;

  constructor(options: GroupMemberOptions) {
    this.options = options;
  }

  memberId: string | undefined;
  start() {
    this.calls.push('start');
    this.memberId = `fake-${this.options.name}`;
    return this.failStart ? Promise.reject(this.failStart) : Promise.resolve();
  }
  pause() {
    this.calls.push('pause');
  }
  resume() {
    this.calls.push('resume');
  }
  seek() {
    this.calls.push('seek');
  }
  isAssigned() {
    return true;
  }
  commit() {
    return Promise.resolve();
  }
  stopFetching() {
    this.calls.push('stopFetching');
    return Promise.resolve();
  }
  close() {
    this.calls.push('close');
    return Promise.resolve();
  }
}

class FakeSender implements LaneSender {
  connect() {
    return Promise.resolve();
  }
  disconnect() {
    return Promise.resolve();
  }
  send() {
    return Promise.resolve();
  }
}

/** `prepare(member, n)`: the n-th member made (0-based), to set its failures before it is used. */
export function fakeKafka(prepare: (member: FakeMember, index: number) => void = () => undefined) {
  const members: FakeMember[] = [];
  const ports: NonNullable<LaneConsumerOptions<Schedulable>['ports']> = {
    member: (options) => {
      const member = new FakeMember(options);
      prepare(member, members.length);
      members.push(member);
      return member;
    },
    sender: () => new FakeSender(),
    migrate: false,
  };
  // Never connected to: every Kafka call goes through the fakes above.
  const kafka = new KafkaClient('fake', { brokers: ['127.0.0.1:1'] });
  return { kafka, ports, members };
}
